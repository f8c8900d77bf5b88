-- Sync, step 1: store a schedule defined in code that the database does not know yet.
INSERT INTO nightcrew.schedules (
    name, type, cron, every_seconds, timezone, payload, priority, queue, critical, missed,
    defer_delay_seconds, max_deferrals, code_hash, next_run_at, quiet_backlog, run_by_seconds
)
VALUES (
    %(name)s, %(type)s, %(cron)s::text, %(every_seconds)s::float8, %(timezone)s,
    %(payload)s::jsonb, %(priority)s::int, %(queue)s::text, %(critical)s, %(missed)s,
    %(defer_delay_seconds)s, %(max_deferrals)s, %(code_hash)s, %(next_run_at)s,
    %(quiet_backlog)s::int, %(run_by_seconds)s::float8
)
ON CONFLICT (name) DO NOTHING
