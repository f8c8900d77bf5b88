-- Alerts, open ones first, then newest first.
SELECT id, rule, status, message, details, opened_at, resolved_at
FROM nightcrew.alerts
WHERE %(status)s::text IS NULL OR status = %(status)s
ORDER BY status = 'open' DESC, id DESC
LIMIT %(limit)s
