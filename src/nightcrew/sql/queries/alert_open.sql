-- Open an alert unless one is open for the rule already (partial unique index).
INSERT INTO nightcrew.alerts (rule, message, details, opened_at)
VALUES (%(rule)s, %(message)s, %(details)s::jsonb, %(now)s)
ON CONFLICT (rule) WHERE status = 'open' DO NOTHING
RETURNING id
