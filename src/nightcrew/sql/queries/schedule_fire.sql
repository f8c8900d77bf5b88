-- Enqueue the job of one tick. The unique (schedule_name, scheduled_for) index makes this
-- idempotent: a tick that was already enqueued returns no row.
WITH ins AS (
    INSERT INTO nightcrew.jobs (
        id, type, queue, payload, priority, run_at, max_attempts, timeout_seconds,
        dedupe_key, user_id, schedule_name, scheduled_for
    )
    VALUES (
        %(id)s, %(type)s, %(queue)s, %(payload)s::jsonb, %(priority)s,
        coalesce(%(run_at)s, now()) + make_interval(secs => %(delay)s),
        %(max_attempts)s, %(timeout_seconds)s, %(dedupe_key)s, %(user_id)s,
        %(schedule_name)s, %(scheduled_for)s
    )
    ON CONFLICT (schedule_name, scheduled_for) WHERE schedule_name IS NOT NULL DO NOTHING
    RETURNING id, queue, run_at
)
SELECT id, CASE WHEN run_at <= now() THEN pg_notify('nightcrew_jobs', queue)::text END
FROM ins
