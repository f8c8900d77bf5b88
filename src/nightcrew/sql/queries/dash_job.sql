-- One job with everything its dashboard page shows (row-level security decides visibility).
SELECT id, type, queue, payload, status::text AS status, priority, attempts, max_attempts,
       progress, stage, metrics, result, error, run_at, created_at, started_at, completed_at,
       updated_at, user_id,
       errors, dedupe_key, timeout_seconds, worker_id, cancel_requested, schedule_name,
       scheduled_for
FROM nightcrew.jobs
WHERE id = %(id)s
