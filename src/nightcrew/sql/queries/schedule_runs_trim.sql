-- The per-day schedule counters past the 7-day window the schedules show (a day's margin).
DELETE FROM nightcrew.schedule_runs_daily
WHERE day < (now() AT TIME ZONE 'UTC')::date - 8
