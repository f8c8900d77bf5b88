-- Newest first for one user, read through jobs_user_idx. Row-level security enforces the
-- user anyway; the explicit condition only lets the planner use the per-user index.
SELECT id, type, queue, payload, status::text AS status, priority, attempts, max_attempts,
       progress, stage, metrics, result, error, run_at, created_at, started_at, completed_at,
       updated_at, user_id, dedupe_scope, depends_on, pending_parents
FROM nightcrew.jobs
WHERE user_id = %(user_id)s
  AND (%(status)s::text IS NULL OR status::text = %(status)s)
  AND (%(type)s::text IS NULL OR type = %(type)s)
  AND (%(cursor)s::uuid IS NULL OR id < %(cursor)s)
ORDER BY user_id DESC, id DESC
LIMIT %(limit)s
