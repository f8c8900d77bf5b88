-- Write a batch of attempt outcomes in one statement. Fenced: a row is only written while
-- this worker still holds the lease of that attempt (worker_id and attempts match).
-- Outcome status is completed, failed, cancelled, retrying (with delay) or pending (released
-- at shutdown: the attempt is given back).
UPDATE nightcrew.jobs AS j
SET status = o.status::nightcrew.job_status,
    result = CASE WHEN o.status = 'completed' THEN o.result ELSE j.result END,
    progress = CASE WHEN o.status = 'completed' THEN 100 ELSE j.progress END,
    error = coalesce(o.error ->> 'message', j.error),
    errors = CASE WHEN o.error IS NULL THEN j.errors ELSE j.errors || jsonb_build_array(o.error) END,
    attempts = CASE WHEN o.status = 'pending' THEN j.attempts - 1 ELSE j.attempts END,
    run_at = CASE WHEN o.status = 'retrying' THEN now() + make_interval(secs => o.delay)
                  ELSE j.run_at END,
    completed_at = CASE WHEN o.status IN ('completed', 'failed', 'cancelled') THEN now() END,
    worker_id = NULL,
    lease_expires_at = NULL,
    cancel_requested = false,
    updated_at = now()
FROM unnest(%(ids)s::uuid[], %(attempts)s::int[], %(statuses)s::text[], %(results)s::jsonb[],
            %(errors)s::jsonb[], %(delays)s::float8[])
     AS o(id, attempt, status, result, error, delay)
WHERE j.id = o.id
  AND j.status = 'processing'
  AND j.worker_id = %(worker_id)s
  AND j.attempts = o.attempt
RETURNING j.id
