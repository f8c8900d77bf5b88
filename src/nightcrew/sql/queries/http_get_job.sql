-- One job as the API shows it (row-level security decides whether it is visible).
SELECT id, type, queue, payload, status::text AS status, priority, attempts, max_attempts,
       progress, stage, metrics, result, error, run_at, created_at, started_at, completed_at,
       updated_at, user_id, dedupe_scope
FROM nightcrew.jobs
WHERE id = %(id)s
