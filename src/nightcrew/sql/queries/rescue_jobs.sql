-- Jobs whose lease ran out (worker killed or cut off): retry them, or dead-letter them when
-- their attempts are spent; a job asked to cancel while it ran ends cancelled instead (the
-- cancel request must not be lost with the lease). The lost attempt is recorded in the error
-- history.
WITH expired AS (
    SELECT id
    FROM nightcrew.jobs
    WHERE status = 'processing'
      AND lease_expires_at < coalesce(%(now)s, now())
    ORDER BY lease_expires_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE nightcrew.jobs AS j
SET status = CASE WHEN j.cancel_requested THEN 'cancelled'
                  WHEN j.attempts >= j.max_attempts THEN 'failed'
                  ELSE 'retrying' END::nightcrew.job_status,
    error = 'lease expired: worker ' || coalesce(j.worker_id, '?') || ' stopped heartbeating',
    errors = j.errors || jsonb_build_array(jsonb_build_object(
        'attempt', j.attempts,
        'type', 'LeaseExpired',
        'message', 'lease expired: worker ' || coalesce(j.worker_id, '?')
                   || ' stopped heartbeating',
        'traceback', NULL,
        'at', now())),
    completed_at = CASE WHEN j.cancel_requested OR j.attempts >= j.max_attempts THEN now() END,
    cancel_requested = false,
    run_at = now(),
    worker_id = NULL,
    lease_expires_at = NULL,
    updated_at = now()
FROM expired
WHERE j.id = expired.id
RETURNING j.id, j.status::text
