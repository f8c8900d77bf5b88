-- A run's function ended (succeeded, or failed for good); recorded once. attempt 0: keep
-- the attempts recorded so far (the run's end records a job that ended unrecorded).
UPDATE league.run_functions
SET status = %(status)s, attempts = greatest(attempts, %(attempt)s), ended_at = clock_timestamp(),
    duration_ms = coalesce(%(duration_ms)s, duration_ms), rows_written = %(rows)s,
    error = %(error)s
WHERE run_id = %(run_id)s AND function = %(function)s AND status IN ('queued', 'processing')
