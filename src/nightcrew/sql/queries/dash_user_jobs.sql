-- dash_jobs for one user, read through jobs_user_idx (row-level security enforces the user
-- anyway; the condition lets the planner use the index).
SELECT id, type, queue, payload, status::text AS status, priority, attempts, max_attempts,
       progress, stage, metrics, result, error, run_at, created_at, started_at, completed_at,
       updated_at, user_id
FROM nightcrew.jobs
WHERE user_id = %(user_id)s
  AND id < %(before)s AND id >= %(after)s
  AND (%(status)s::text IS NULL OR status::text = %(status)s)
  AND (%(type)s::text IS NULL OR type = %(type)s)
ORDER BY user_id DESC, id DESC
LIMIT %(limit)s
