-- Override a key's limits (set_limit): the given values replace the code's until cleared.
-- The rate starts afresh, and jobs that waited for a slot under the old rate (reserved,
-- given back until then) become runnable now, to be granted under the new one.
WITH upsert AS (
    INSERT INTO nightcrew.limits AS l (key, overridden, override_rate_count,
                                       override_rate_seconds, override_concurrency,
                                       overridden_by)
    VALUES (%(key)s, true, %(count)s, %(seconds)s, %(concurrency)s, %(by)s)
    ON CONFLICT (key) DO UPDATE
        SET overridden = true,
            override_rate_count = EXCLUDED.override_rate_count,
            override_rate_seconds = EXCLUDED.override_rate_seconds,
            override_concurrency = EXCLUDED.override_concurrency,
            overridden_by = EXCLUDED.overridden_by,
            tat = NULL,
            updated_at = now()
    RETURNING key
), released AS (
    DELETE FROM nightcrew.limit_reservations
    WHERE key = %(key)s
    RETURNING job_id
)
UPDATE nightcrew.jobs AS j
SET run_at = now(), updated_at = now()
FROM released AS r
WHERE j.id = r.job_id AND j.status IN ('pending', 'retrying') AND j.run_at > now()
