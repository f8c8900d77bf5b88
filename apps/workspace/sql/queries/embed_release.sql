UPDATE workspace.documents
SET embed_claim_job = NULL, embed_claim_hash = NULL, embed_claim_until = NULL
WHERE id = ANY(%(ids)s) AND embed_claim_job = %(job)s
