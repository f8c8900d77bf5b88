-- Manual retry of a dead or cancelled job: back to pending now, attempts reset.
-- The checkpoint is kept so the job resumes where it stopped. A job whose dedupe key is
-- held by a live job again is left alone (retrying it would duplicate that job).
UPDATE nightcrew.jobs AS j
SET status = 'pending',
    attempts = 0,
    run_at = now(),
    completed_at = NULL,
    cancel_requested = false,
    updated_at = now()
WHERE j.id = %(id)s AND j.status IN ('failed', 'cancelled')
  AND (j.dedupe_key IS NULL OR NOT EXISTS (
      SELECT FROM nightcrew.jobs AS live
      WHERE live.dedupe_key = j.dedupe_key
        AND live.status IN ('pending', 'processing', 'retrying')))
RETURNING j.id, pg_notify('nightcrew_jobs', j.queue)::text AS notified
