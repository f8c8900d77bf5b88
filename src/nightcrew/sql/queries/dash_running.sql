-- Running jobs, read through jobs_lease_idx (bounded by what runs, not by history).
SELECT id, type, queue, payload, status::text AS status, priority, attempts, max_attempts,
       progress, stage, metrics, result, error, run_at, created_at, started_at, completed_at,
       updated_at, user_id, cancel_requested, progress_base, progress_base_at
FROM nightcrew.jobs
WHERE status = 'processing'
ORDER BY started_at, id
LIMIT %(limit)s
