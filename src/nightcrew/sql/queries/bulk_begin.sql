-- First statement of a bulk enqueue's transaction, pipelined with its BEGIN: the database
-- clock for the run_at of delayed rows (streamed rows take the same now() as their column
-- default) and the wake-up of the queues' workers. The notifications are delivered at
-- commit, so sending them before the COPY is safe.
SELECT now() AS now, array_agg(pg_notify('nightcrew_jobs', q)::text) AS notified
FROM unnest(%(queues)s::text[]) AS q
