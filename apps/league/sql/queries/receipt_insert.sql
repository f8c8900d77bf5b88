-- Remember an accepted invalidation request's signature; none when it was seen before.
WITH pruned AS (
    DELETE FROM league.invalidation_receipts WHERE received_at < now() - interval '10 minutes'
)
INSERT INTO league.invalidation_receipts (signature) VALUES (%(signature)s)
ON CONFLICT DO NOTHING
RETURNING signature
