-- Claim the job's own document if its vector for the model is missing or stale and no
-- other live job claimed this content. Waits for a row lock (an index job writing the
-- row, a save): skipping it would leave the document unembedded.
UPDATE workspace.documents d
SET embed_claim_job = %(job)s, embed_claim_hash = d.content_hash,
    embed_claim_until = now() + make_interval(secs => %(claim_seconds)s)
FROM (
    SELECT c.id
    FROM workspace.documents c
    LEFT JOIN workspace.embeddings e ON e.document_id = c.id AND e.model = %(model)s
    WHERE e.content_hash IS DISTINCT FROM c.content_hash
      AND (c.embed_claim_job IS NULL OR c.embed_claim_job = %(job)s
           OR c.embed_claim_hash IS DISTINCT FROM c.content_hash
           OR c.embed_claim_until < now())
      AND c.id = %(id)s
    FOR UPDATE OF c
) picked
WHERE d.id = picked.id
RETURNING d.id, d.owner, d.title, d.content, d.content_hash
