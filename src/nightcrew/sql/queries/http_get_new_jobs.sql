-- The jobs this request (or this batch of one key's requests) just inserted, as the API
-- shows them (the live rows only: the same columns as http_get_job, without its look into
-- the archive).
SELECT id, type, queue, payload, status::text AS status, priority, attempts, max_attempts,
       progress, stage, metrics, result, error, run_at, created_at, started_at, completed_at,
       updated_at, user_id, dedupe_scope, progress_base, progress_base_at, depends_on,
       pending_parents, false AS archived
FROM nightcrew.jobs
WHERE id = ANY(%(ids)s::uuid[])
