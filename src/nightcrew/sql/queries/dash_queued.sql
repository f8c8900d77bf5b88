-- What runs next: runnable jobs by time, then priority (the backlog's partial index).
SELECT id, type, queue, payload, status::text AS status, priority, attempts, max_attempts,
       progress, stage, metrics, result, error, run_at, created_at, started_at, completed_at,
       updated_at, user_id
FROM nightcrew.jobs
WHERE status IN ('pending', 'retrying') AND pending_parents = 0
ORDER BY run_at, priority DESC, id
LIMIT %(limit)s
