-- One alert.
SELECT id, rule, status, message, details, opened_at, resolved_at
FROM nightcrew.alerts
WHERE id = %(id)s
