-- Insert one job with an 'active'-scope dedupe key; while a job with that key is live,
-- return the existing job instead. notify_now and due: see insert_job_plain.
-- The no-op DO UPDATE makes the statement return the conflicting row's id atomically.
WITH ins AS (
    INSERT INTO nightcrew.jobs AS j (
        id, type, queue, payload, priority, run_at, max_attempts, timeout_seconds,
        dedupe_key, dedupe_scope, user_id, notify
    )
    VALUES (
        %(id)s, %(type)s, %(queue)s, %(payload)s::jsonb, %(priority)s,
        coalesce(%(run_at)s, now()) + make_interval(secs => %(delay)s),
        %(max_attempts)s, %(timeout_seconds)s, %(dedupe_key)s, 'active', %(user_id)s,
        %(notify)s::jsonb
    )
    ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL AND dedupe_scope = 'active'
        AND status IN ('pending', 'processing', 'retrying')
    DO UPDATE SET dedupe_key = EXCLUDED.dedupe_key
    RETURNING j.id, j.queue, j.run_at, (j.xmax = 0) AS inserted
)
SELECT id, inserted,
       CASE WHEN %(notify_now)s AND inserted AND run_at <= now()
            THEN pg_notify('nightcrew_jobs', queue)::text END AS notified,
       inserted AND run_at <= now() AS due
FROM ins
