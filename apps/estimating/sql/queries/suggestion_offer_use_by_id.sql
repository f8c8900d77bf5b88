-- The estimate used the suggestion with this id: it must have been offered for this
-- estimate and item (no row otherwise). The first use counts.
UPDATE estimating.suggestion_offers
SET used_at = coalesce(used_at, %(used_at)s)
WHERE id = %(suggestion_id)s AND project_id = %(project_id)s
  AND estimate_id = %(estimate_id)s AND item_id = %(item_id)s
RETURNING id
