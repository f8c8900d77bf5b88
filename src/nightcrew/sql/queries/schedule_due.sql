-- Schedules whose tick has come, locked until the caller commits: a second scheduler
-- skips them and finds next_run_at advanced afterwards.
SELECT *
FROM nightcrew.schedules
WHERE enabled AND in_code AND next_run_at <= %(now)s
ORDER BY next_run_at
FOR UPDATE SKIP LOCKED
