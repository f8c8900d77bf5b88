-- Insert jobs that have no dedupe key and no parents, one array element per job (the HTTP
-- API's concurrent enqueues of one key, written in one statement and one commit), and
-- wake the queues that got a job due now: one NOTIFY per queue, not per job.
WITH ins AS (
    INSERT INTO nightcrew.jobs (
        id, type, queue, payload, priority, run_at, max_attempts, timeout_seconds,
        user_id, notify
    )
    SELECT j.id, j.type, j.queue, j.payload::jsonb, j.priority,
           coalesce(j.run_at, now()) + make_interval(secs => j.delay),
           j.max_attempts, j.timeout_seconds, j.user_id, j.notify::jsonb
    FROM unnest(
        %(ids)s::uuid[], %(types)s::text[], %(queues)s::text[], %(payloads)s::text[],
        %(priorities)s::int[], %(run_ats)s::timestamptz[], %(delays)s::float8[],
        %(max_attempts)s::int[], %(timeouts)s::float8[], %(user_ids)s::text[],
        %(notifies)s::text[]
    ) AS j (id, type, queue, payload, priority, run_at, delay, max_attempts,
            timeout_seconds, user_id, notify)
    RETURNING queue, run_at
)
SELECT pg_notify('nightcrew_jobs', queue)
FROM (SELECT DISTINCT queue FROM ins WHERE run_at <= now()) AS due
