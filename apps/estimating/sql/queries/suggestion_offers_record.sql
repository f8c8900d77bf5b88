-- Record suggestions offered for an estimate (once per item: the first offer's time is
-- kept) and return their ids.
INSERT INTO estimating.suggestion_offers AS o (project_id, estimate_id, item_id)
SELECT %(project_id)s, %(estimate_id)s, item_id FROM unnest(%(item_ids)s::integer[]) AS item_id
ON CONFLICT (project_id, estimate_id, item_id) DO UPDATE SET item_id = o.item_id
RETURNING o.id, o.item_id
