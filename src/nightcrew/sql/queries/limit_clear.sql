-- Drop a key's override (the code's limits apply again at the next grant); like
-- limit_set, the rate starts afresh and jobs waiting on a reserved slot become runnable.
WITH cleared AS (
    UPDATE nightcrew.limits
    SET overridden = false, override_rate_count = NULL, override_rate_seconds = NULL,
        override_concurrency = NULL, overridden_by = NULL, tat = NULL, updated_at = now()
    WHERE key = %(key)s AND overridden
    RETURNING key
), released AS (
    DELETE FROM nightcrew.limit_reservations
    WHERE key = %(key)s AND EXISTS (SELECT 1 FROM cleared)
    RETURNING job_id
), woken AS (
    UPDATE nightcrew.jobs AS j
    SET run_at = now(), updated_at = now()
    FROM released AS r
    WHERE j.id = r.job_id AND j.status IN ('pending', 'retrying') AND j.run_at > now()
)
SELECT key FROM cleared
