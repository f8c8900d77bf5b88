-- The estimate used an item the client says was suggested for it: mark the offer used,
-- recording the offer too when it was not (offered and used at the same moment).
INSERT INTO estimating.suggestion_offers AS o (project_id, estimate_id, item_id, offered_at,
                                               used_at)
VALUES (%(project_id)s, %(estimate_id)s, %(item_id)s, %(used_at)s, %(used_at)s)
ON CONFLICT (project_id, estimate_id, item_id)
DO UPDATE SET used_at = coalesce(o.used_at, excluded.used_at)
RETURNING o.id
