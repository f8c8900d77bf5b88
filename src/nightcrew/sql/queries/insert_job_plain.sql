-- Insert one job that has no dedupe key. Kept apart from insert_job: ON CONFLICT's
-- speculative insertion costs about a third of a single enqueue, and without a key
-- there can be no conflict.
-- notify_now: wake the workers from this statement (a lone enqueue, or inside a caller's
-- transaction). When the statement commits on its own while other enqueues of the process
-- are in flight, the caller sends notify_queue after it instead: a NOTIFY takes a
-- cluster-wide lock from before its transaction's commit until after it, which would make
-- concurrent enqueues wait for each other's WAL flush (no group commit).
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
       CASE WHEN %(notify_now)s AND run_at <= now()
            THEN pg_notify('nightcrew_jobs', queue)::text END AS notified,
       run_at <= now() AS due
FROM ins
