-- Manual retry of a dead or cancelled job: back to pending now, attempts reset.
-- The checkpoint is kept so the job resumes where it stopped.
UPDATE nightcrew.jobs
SET status = 'pending',
    attempts = 0,
    run_at = now(),
    completed_at = NULL,
    cancel_requested = false,
    updated_at = now()
WHERE id = %(id)s AND status IN ('failed', 'cancelled')
RETURNING id, pg_notify('nightcrew_jobs', queue)::text AS notified
