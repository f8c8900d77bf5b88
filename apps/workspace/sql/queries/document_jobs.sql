-- The unfinished jobs working on one document (those the caller may see).
SELECT id, type, status::text AS status
FROM nightcrew.jobs
WHERE type = ANY(%(types)s) AND payload ->> 'document_id' = %(id)s::text
  AND status IN ('pending', 'processing', 'retrying')
ORDER BY created_at
