-- First statement of a bulk enqueue's transaction: the database clock for run_at (COPY
-- bypasses column defaults) and the wake-up of the queues' workers, in one round trip.
-- The notifications are delivered at commit, so sending them before the COPY is safe.
SELECT now() AS now, array_agg(pg_notify('nightcrew_jobs', q)::text) AS notified
FROM unnest(%(queues)s::text[]) AS q
