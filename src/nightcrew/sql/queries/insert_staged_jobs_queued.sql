-- Move staged 'queued'-scope (coalescing) jobs into the queue: per dedupe key, a job of the
-- key waiting to run (pending or retrying) wins; else the first staged item is inserted,
-- or meets the never-started job a concurrent enqueue just wrote (jobs_dedupe_queued_idx).
WITH staged AS (
    SELECT DISTINCT ON (s.dedupe_key) s.*
    FROM nightcrew_staged_jobs AS s
    WHERE s.dedupe_scope = 'queued'
    ORDER BY s.dedupe_key, s.ord
), waiting AS (
    SELECT DISTINCT ON (j.dedupe_key) j.id, j.dedupe_key
    FROM nightcrew.jobs AS j JOIN staged AS s ON s.dedupe_key = j.dedupe_key
    WHERE j.dedupe_scope = 'queued' AND j.status IN ('pending', 'retrying')
    ORDER BY j.dedupe_key, j.id
), ins AS (
    INSERT INTO nightcrew.jobs AS j (
        id, type, queue, payload, priority, run_at, max_attempts, timeout_seconds,
        dedupe_key, dedupe_scope, user_id, notify
    )
    SELECT s.id, s.type, s.queue, s.payload, s.priority, s.run_at, s.max_attempts,
           s.timeout_seconds, s.dedupe_key, 'queued', s.user_id, s.notify
    FROM staged AS s
    WHERE NOT EXISTS (SELECT FROM waiting AS w WHERE w.dedupe_key = s.dedupe_key)
    ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL AND dedupe_scope = 'queued'
        AND status = 'pending' AND started_at IS NULL
    DO UPDATE SET dedupe_key = EXCLUDED.dedupe_key
    RETURNING j.id, j.dedupe_key
)
SELECT id, dedupe_key, 'queued' AS dedupe_scope FROM ins
UNION ALL
SELECT id, dedupe_key, 'queued' FROM waiting
