-- Insert one job that has no dedupe key. Kept apart from insert_job: ON CONFLICT's
-- speculative insertion costs about a third of a single enqueue, and without a key
-- there can be no conflict.
WITH ins AS (
    INSERT INTO nightcrew.jobs (
        id, type, queue, payload, priority, run_at, max_attempts, timeout_seconds,
        dedupe_key, user_id, notify
    )
    VALUES (
        %(id)s, %(type)s, %(queue)s, %(payload)s::jsonb, %(priority)s,
        coalesce(%(run_at)s, now()) + make_interval(secs => %(delay)s),
        %(max_attempts)s, %(timeout_seconds)s, %(dedupe_key)s, %(user_id)s,
        %(notify)s::jsonb
    )
    RETURNING id, queue, run_at
)
SELECT id, true AS inserted,
       CASE WHEN run_at <= now() THEN pg_notify('nightcrew_jobs', queue)::text END AS notified
FROM ins
