-- One schedule, locked for a run-time edit (and the database clock, for the next fire time).
SELECT *, clock_timestamp() AS db_now
FROM nightcrew.schedules
WHERE name = %(name)s
FOR UPDATE
