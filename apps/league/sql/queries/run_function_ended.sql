-- A run's function ended (succeeded, or failed for good): recorded once, and counted on its
-- run. Returns the run's count of ended functions: the function that ends last sees the
-- total, and enqueues the run's cache invalidation in the same transaction.
WITH ended AS (
    UPDATE league.run_functions
    SET status = %(status)s, attempts = %(attempt)s, ended_at = now(),
        duration_ms = %(duration_ms)s, rows_written = %(rows)s, error = %(error)s
    WHERE run_id = %(run_id)s AND function = %(function)s AND status IN ('queued', 'processing')
    RETURNING run_id
)
UPDATE league.runs r SET functions_ended = functions_ended + 1
FROM ended WHERE r.id = ended.run_id
RETURNING r.functions_ended, r.functions_total
