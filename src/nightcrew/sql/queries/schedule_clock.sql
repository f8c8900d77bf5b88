-- The scheduler's clock (the database's, shared by every host) and the next tick due.
SELECT clock_timestamp() AS now,
       (SELECT min(next_run_at) FROM nightcrew.schedules WHERE enabled AND in_code) AS next_due
