-- Resolve the open alerts of these rules.
UPDATE nightcrew.alerts
SET status = 'resolved', resolved_at = greatest(%(now)s::timestamptz, opened_at)
WHERE status = 'open' AND rule = ANY(%(rules)s::text[])
RETURNING id, rule
