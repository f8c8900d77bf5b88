-- The finished job a notification is about (notify job handler).
SELECT id, type, status::text AS status, user_id, notify, result, error, attempts,
       max_attempts, created_at, started_at, completed_at,
       extract(epoch FROM completed_at - started_at)::float8 AS duration_s
FROM nightcrew.jobs
WHERE id = %(id)s
