-- Usage of one week: totals and the ten most used items.
WITH week AS (
    SELECT item_id, project_id, estimate_key, quantity
    FROM estimating.usage
    WHERE used_at >= %(start)s AND used_at < %(end)s
), top AS (
    SELECT i.code, i.name, count(*) AS uses, count(DISTINCT w.project_id) AS projects
    FROM week AS w JOIN estimating.items AS i ON i.id = w.item_id
    GROUP BY i.code, i.name
    ORDER BY uses DESC, i.code
    LIMIT 10
)
SELECT (SELECT count(*) FROM week) AS usage_rows,
       (SELECT count(DISTINCT estimate_key) FROM week) AS estimates,
       (SELECT count(DISTINCT project_id) FROM week) AS projects,
       (SELECT count(DISTINCT item_id) FROM week) AS items,
       (SELECT coalesce(jsonb_agg(top), '[]'::jsonb) FROM top) AS top_items
