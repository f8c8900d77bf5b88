-- The open alerts (one per rule at most).
SELECT id, rule FROM nightcrew.alerts WHERE status = 'open'
