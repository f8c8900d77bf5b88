-- Store the vectors of the contents embedded, only where that content is still current;
-- an identical vector already stored for that content is left alone (written once).
INSERT INTO workspace.embeddings AS e
       (document_id, model, owner, dimension, content_hash, embedding)
SELECT d.id, %(model)s, d.owner, %(dimension)s, d.content_hash, v.embedding::vector
FROM unnest(%(ids)s::uuid[], %(hashes)s::bytea[], %(vectors)s::text[])
     AS v (id, content_hash, embedding)
JOIN workspace.documents d ON d.id = v.id AND d.content_hash = v.content_hash
ON CONFLICT (document_id, model) DO UPDATE
SET content_hash = excluded.content_hash, embedding = excluded.embedding,
    dimension = excluded.dimension, embedded_at = now(), writes = e.writes + 1
WHERE e.content_hash IS DISTINCT FROM excluded.content_hash
RETURNING document_id
