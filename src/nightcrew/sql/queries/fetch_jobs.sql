-- Lease up to %(limit)s runnable jobs: highest priority first, then oldest run_at.
-- One ordered index scan per queue (jobs_fetch_idx), SKIP LOCKED so workers never wait
-- on each other; attempts is counted here, so ctx.job.attempt is 1 on the first run.
-- %(exclude)s: jobs whose earlier attempt still runs in this worker (a thread that outlived
-- its lease): fetching them here would run two attempts side by side. Usually empty.
-- A dependent waits (pending_parents > 0) until its parents end: left out like the index.
-- A paused queue (nightcrew.queue_pauses) is skipped: one primary-key probe per queue.
WITH picked AS (
    SELECT c.ctid
    FROM (
        SELECT u.name
        FROM unnest(%(queues)s::text[]) AS u(name)
        WHERE NOT EXISTS (SELECT 1 FROM nightcrew.queue_pauses AS p WHERE p.queue = u.name)
    ) AS q
    CROSS JOIN LATERAL (
        SELECT ctid, priority, run_at
        FROM nightcrew.jobs
        WHERE queue = q.name
          AND status IN ('pending', 'retrying') AND pending_parents = 0
          AND run_at <= coalesce(%(now)s, now())
          AND id <> ALL (%(exclude)s::uuid[])
        ORDER BY priority DESC, run_at
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED
    ) AS c
    ORDER BY c.priority DESC, c.run_at
    LIMIT %(limit)s
)
UPDATE nightcrew.jobs AS j
SET status = 'processing',
    attempts = j.attempts + 1,
    worker_id = %(worker_id)s,
    lease_expires_at = now() + make_interval(secs => %(lease_seconds)s),
    started_at = now(),
    updated_at = now()
-- By the row versions just locked (no one else can move them): a TID scan, whatever the
-- table's statistics say. An id join or `id = ANY(...)` can be planned as a scan of the
-- whole table (right after a bulk load, or in a plan prepared while the table was empty).
WHERE j.ctid = ANY (ARRAY(SELECT ctid FROM picked))
RETURNING j.id, j.type, j.queue, j.payload, j.priority, j.attempts, j.max_attempts,
          j.timeout_seconds, j.checkpoint, j.user_id, j.created_at,
          coalesce(cardinality(j.depends_on), 0) AS parent_count
