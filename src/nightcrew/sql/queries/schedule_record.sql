-- After a tick was fired, deferred or skipped: the schedule's new state.
UPDATE nightcrew.schedules
SET next_run_at = %(next_run_at)s,
    last_run_at = coalesce(%(last_run_at)s, last_run_at),
    last_job_id = coalesce(%(last_job_id)s, last_job_id),
    last_outcome = %(last_outcome)s,
    deferrals = %(deferrals)s,
    deferred_from = %(deferred_from)s,
    updated_at = now()
WHERE name = %(name)s
