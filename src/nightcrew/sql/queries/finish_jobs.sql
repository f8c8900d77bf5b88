-- Write a batch of attempt outcomes in one statement. Fenced: a row is only written while
-- this worker still holds the lease of that attempt (worker_id and attempts match).
-- Outcome status is completed, failed, cancelled, retrying (with delay) or pending (released
-- at shutdown: the attempt is given back).
--
-- Shaped so that every plan is linear in the batch, whatever the table statistics say (they
-- are stale right after a bulk load): the rows are found by primary key (= ANY of the
-- batch's ids), the fence is part of the update's own condition (so a row moved on by a
-- rescue, a cancel or another fetch meanwhile is re-checked and left alone, without locking
-- every row first: that lock cost a WAL record per job), and status is compared as text so
-- the partial lease index (full of dead entries during a drain) is never chosen.
--
-- The statement counts and announces its own rows (nightcrew.jobs_finished, migration
-- 0016): the outcome statistics and the nightcrew_events ids, from what it returns, without
-- the transition tables the jobs_after_update trigger would otherwise join.
WITH outcome AS (
    -- One JSON array of {id, attempt, status, result, error, delay} (Outcome.as_json).
    SELECT *
    FROM jsonb_to_recordset(%(outcomes)s::jsonb)
         AS o(id uuid, attempt int, status text, result jsonb, error jsonb, delay float8)
), done AS (
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
    FROM outcome AS o
    WHERE j.id = ANY (ARRAY(SELECT id FROM outcome))
      AND j.id = o.id
      AND j.attempts = o.attempt
      AND j.status::text = 'processing'
      AND j.worker_id = %(worker_id)s
    RETURNING j.id, j.type, coalesce(j.user_id, '') AS user_id, j.status::text AS status,
              extract(epoch FROM j.completed_at - j.started_at)::float8 AS secs
), recorded AS (
    SELECT nightcrew.jobs_finished(array_agg(id), array_agg(type), array_agg(user_id),
                                   array_agg(status), array_agg(secs)) AS n
    FROM done
)
SELECT done.id FROM done, recorded
