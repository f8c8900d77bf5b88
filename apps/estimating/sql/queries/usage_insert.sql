INSERT INTO estimating.usage (item_id, project_id, estimate_key, quantity, used_at)
SELECT %(item_id)s, e.project_id, e.key, %(quantity)s, coalesce(%(used_at)s, now())
FROM estimating.estimates AS e
WHERE e.project_id = %(project_id)s AND e.estimate_id = %(estimate_id)s
RETURNING id, used_at
