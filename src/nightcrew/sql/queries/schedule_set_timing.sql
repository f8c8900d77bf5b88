-- Run-time change of when a schedule fires; it restarts from the new next fire time.
UPDATE nightcrew.schedules
SET cron = %(cron)s::text,
    every_seconds = %(every_seconds)s::float8,
    timezone = %(timezone)s,
    next_run_at = %(next_run_at)s,
    deferrals = 0,
    deferred_from = NULL,
    updated_at = now()
WHERE name = %(name)s
