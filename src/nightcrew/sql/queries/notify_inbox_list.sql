-- The acting user's notifications, newest first (row-level security limits the rows).
SELECT id, job_id, kind, title, body, created_at, read_at
FROM nightcrew.notifications
WHERE user_id = %(user_id)s
  AND (%(before)s::bigint IS NULL OR id < %(before)s::bigint)
  AND (NOT %(unread_only)s OR read_at IS NULL)
ORDER BY id DESC
LIMIT %(limit)s
