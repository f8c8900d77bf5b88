-- Lease up to %(limit)s runnable jobs: highest priority first, then oldest run_at.
-- One ordered index scan per queue (jobs_fetch_idx), SKIP LOCKED so workers never wait
-- on each other; attempts is counted here, so ctx.job.attempt is 1 on the first run.
WITH picked AS (
    SELECT c.id
    FROM unnest(%(queues)s::text[]) AS q(name)
    CROSS JOIN LATERAL (
        SELECT id, priority, run_at
        FROM nightcrew.jobs
        WHERE queue = q.name
          AND status IN ('pending', 'retrying')
          AND run_at <= coalesce(%(now)s, now())
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
-- = ANY(ARRAY(...)) makes this a primary-key lookup per picked id; a join on the CTE can be
-- planned as a scan of the whole table (e.g. right after a bulk load, before ANALYZE).
WHERE j.id = ANY (ARRAY(SELECT id FROM picked))
RETURNING j.id, j.type, j.queue, j.payload, j.priority, j.attempts, j.max_attempts,
          j.timeout_seconds, j.checkpoint, j.user_id, j.run_at, j.created_at
