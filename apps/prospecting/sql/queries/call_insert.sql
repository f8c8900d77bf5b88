-- A paid call and its cost, in the transaction that stores its result. The unique
-- subject refuses a second payment for the same thing (nothing is returned then).
INSERT INTO prospecting.calls (campaign_id, user_id, provider, subject, cost)
VALUES (%(campaign_id)s, %(user_id)s, %(provider)s, %(subject)s, %(cost)s)
ON CONFLICT (campaign_id, provider, subject) DO NOTHING
RETURNING id
