-- An attempt of a run's function began.
UPDATE league.run_functions
SET status = 'processing', attempts = %(attempt)s, started_at = coalesce(started_at, clock_timestamp())
WHERE run_id = %(run_id)s AND function = %(function)s AND status IN ('queued', 'processing')
