-- Sync, step 2: the code's definition replaces the stored one only when the code changed
-- since the last sync (code_hash), so run-time edits survive restarts of unchanged code.
-- A change of timing restarts the schedule from the next fire time computed by the caller.
UPDATE nightcrew.schedules
SET type = %(type)s,
    cron = %(cron)s::text,
    every_seconds = %(every_seconds)s::float8,
    timezone = %(timezone)s,
    payload = %(payload)s::jsonb,
    priority = %(priority)s::int,
    queue = %(queue)s::text,
    critical = %(critical)s,
    missed = %(missed)s,
    defer_delay_seconds = %(defer_delay_seconds)s,
    max_deferrals = %(max_deferrals)s,
    code_hash = %(code_hash)s,
    quiet_backlog = %(quiet_backlog)s::int,
    run_by_seconds = %(run_by_seconds)s::float8,
    next_run_at = CASE
        WHEN cron IS DISTINCT FROM %(cron)s::text
          OR every_seconds IS DISTINCT FROM %(every_seconds)s::float8
          OR timezone <> %(timezone)s
        THEN %(next_run_at)s ELSE next_run_at END,
    deferrals = 0,
    deferred_from = NULL,
    updated_at = now()
WHERE name = %(name)s AND code_hash IS DISTINCT FROM %(code_hash)s
