-- Insert one job with a 'queued'-scope (coalescing) dedupe key: while a job with the key
-- waits to run (pending or retrying) return it; else insert, and if a concurrent enqueue
-- won the never-started slot (jobs_dedupe_queued_idx), return that job atomically.
WITH waiting AS (
    SELECT id FROM nightcrew.jobs
    WHERE dedupe_key = %(dedupe_key)s AND dedupe_scope = 'queued'
      AND status IN ('pending', 'retrying')
    ORDER BY id
    LIMIT 1
), ins AS (
    INSERT INTO nightcrew.jobs AS j (
        id, type, queue, payload, priority, run_at, max_attempts, timeout_seconds,
        dedupe_key, dedupe_scope, user_id, notify
    )
    SELECT %(id)s, %(type)s, %(queue)s, %(payload)s::jsonb, %(priority)s,
           coalesce(%(run_at)s, now()) + make_interval(secs => %(delay)s),
           %(max_attempts)s, %(timeout_seconds)s, %(dedupe_key)s, 'queued', %(user_id)s,
           %(notify)s::jsonb
    WHERE NOT EXISTS (SELECT FROM waiting)
    ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL AND dedupe_scope = 'queued'
        AND status = 'pending' AND started_at IS NULL
    DO UPDATE SET dedupe_key = EXCLUDED.dedupe_key
    RETURNING j.id, j.queue, j.run_at, (j.xmax = 0) AS inserted
)
SELECT id, inserted,
       CASE WHEN %(notify_now)s AND inserted AND run_at <= now()
            THEN pg_notify('nightcrew_jobs', queue)::text END AS notified,
       inserted AND run_at <= now() AS due
FROM ins
UNION ALL
SELECT id, false, NULL, false FROM waiting
