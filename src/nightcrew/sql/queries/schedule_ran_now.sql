-- "Run now": record the manual firing; the regular ticks are not affected.
UPDATE nightcrew.schedules
SET last_run_at = %(fired_at)s,
    last_job_id = coalesce(%(job_id)s, last_job_id),
    last_outcome = %(outcome)s,
    updated_at = now()
WHERE name = %(name)s
