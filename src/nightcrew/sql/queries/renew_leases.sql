-- Heartbeat: extend the leases this worker still holds; report cancellation requests.
-- Rows locked by a handler's ctx.transaction() are skipped, not waited for (one long
-- transaction must not stall the heartbeat of every other job); they are still reported
-- as held, and while locked no rescuer can take them (rescue uses SKIP LOCKED too; the
-- transaction extends the lease itself when it commits, see lock_lease.sql).
WITH held AS (
    SELECT j.id, j.attempts, j.cancel_requested
    FROM nightcrew.jobs AS j
    JOIN unnest(%(ids)s::uuid[], %(attempts)s::int[]) AS h(id, attempt)
      ON j.id = h.id AND j.attempts = h.attempt
    WHERE j.id = ANY (%(ids)s::uuid[])
      AND j.status::text = 'processing'  -- text: keep the planner on the primary key
      AND j.worker_id = %(worker_id)s
),
unlocked AS (
    -- Ownership is re-checked on the locked row version (a rescue may have just won).
    SELECT j.id FROM nightcrew.jobs AS j
    WHERE j.id IN (SELECT id FROM held)
      AND (j.id, j.attempts) IN (SELECT * FROM unnest(%(ids)s::uuid[], %(attempts)s::int[]))
      AND j.status = 'processing'
      AND j.worker_id = %(worker_id)s
    FOR NO KEY UPDATE OF j SKIP LOCKED
),
renewed AS (
    UPDATE nightcrew.jobs AS j
    SET lease_expires_at = now() + make_interval(secs => %(lease_seconds)s)
    FROM unlocked
    WHERE j.id = unlocked.id
)
SELECT id, attempts, cancel_requested FROM held
