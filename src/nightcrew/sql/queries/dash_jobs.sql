-- History, newest first, keyset-paginated on the time-ordered primary key: the id window
-- [after, before) is both the time range and the cursor, so a page costs the same at any depth.
SELECT id, type, queue, payload, status::text AS status, priority, attempts, max_attempts,
       progress, stage, metrics, result, error, run_at, created_at, started_at, completed_at,
       updated_at, user_id
FROM nightcrew.jobs
WHERE id < %(before)s AND id >= %(after)s
  AND (%(status)s::text IS NULL OR status::text = %(status)s)
  AND (%(type)s::text IS NULL OR type = %(type)s)
ORDER BY id DESC
LIMIT %(limit)s
