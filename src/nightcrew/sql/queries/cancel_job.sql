-- Cancel: waiting jobs stop at once; a running job is flagged and its handler is told.
UPDATE nightcrew.jobs
SET status = CASE WHEN status = 'processing' THEN status
                  ELSE 'cancelled'::nightcrew.job_status END,
    cancel_requested = (status = 'processing'),
    completed_at = CASE WHEN status = 'processing' THEN completed_at ELSE now() END,
    updated_at = now()
WHERE id = %(id)s AND status IN ('pending', 'retrying', 'processing')
RETURNING status::text, pg_notify('nightcrew_cancel', id::text)::text AS notified
