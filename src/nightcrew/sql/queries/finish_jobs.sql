-- Write a batch of attempt outcomes in one statement. Fenced: a row is only written while
-- this worker still holds the lease of that attempt (worker_id and attempts match).
-- Outcome status is completed, failed, cancelled, retrying (with delay) or pending (released
-- at shutdown: the attempt is given back).
--
-- Shaped so that every plan is linear in the batch, whatever the table statistics say (they
-- are stale right after a bulk load): the fence is checked by one primary-key probe per
-- outcome, locking the row so it cannot change before the update; status is compared as text
-- so the partial lease index (full of dead entries during a drain) is never chosen; and the
-- update finds its rows by primary key again (= ANY of the locked ids).
WITH outcome AS (
    -- One JSON array of {id, attempt, status, result, error, delay} (Outcome.as_json).
    SELECT *
    FROM jsonb_to_recordset(%(outcomes)s::jsonb)
         AS o(id uuid, attempt int, status text, result jsonb, error jsonb, delay float8)
), mine AS (
    SELECT o.*
    FROM outcome AS o
    CROSS JOIN LATERAL (
        SELECT 1
        FROM nightcrew.jobs AS j
        WHERE j.id = o.id
          AND j.attempts = o.attempt
          AND j.status::text = 'processing'
          AND j.worker_id = %(worker_id)s
        FOR NO KEY UPDATE
    ) AS held
)
UPDATE nightcrew.jobs AS j
SET status = o.status::nightcrew.job_status,
    -- A handler that returned None leaves a JSON null (the batch's null reads as SQL NULL).
    result = CASE WHEN o.status = 'completed' THEN coalesce(o.result, 'null') ELSE j.result END,
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
FROM mine AS o
WHERE j.id = o.id
  AND j.id = ANY (ARRAY(SELECT id FROM mine))
RETURNING j.id
