-- The usage report of one week [start, end): totals; the ten most used items; new items
-- (used this week and never before, archive included); unused library items (how many,
-- and the first 20 by code); usage by project.
WITH week AS (
    SELECT item_id, project_id, estimate_key, quantity
    FROM estimating.usage
    WHERE used_at >= %(start)s AND used_at < %(end)s
), per_item AS (
    SELECT item_id, count(*) AS uses, count(DISTINCT project_id) AS projects,
           sum(quantity) AS quantity
    FROM week GROUP BY item_id
), top AS (
    SELECT i.code, i.name, p.uses, p.projects, p.quantity::text AS quantity
    FROM per_item AS p JOIN estimating.items AS i ON i.id = p.item_id
    ORDER BY p.uses DESC, i.code
    LIMIT 10
), new AS (
    SELECT i.code, i.name, p.uses
    FROM per_item AS p JOIN estimating.items AS i ON i.id = p.item_id
    WHERE NOT EXISTS (SELECT 1 FROM estimating.usage AS u
                      WHERE u.item_id = p.item_id AND u.used_at < %(start)s)
      AND NOT EXISTS (SELECT 1 FROM estimating.usage_archive AS a
                      WHERE a.item_id = p.item_id AND a.used_at < %(start)s)
    ORDER BY p.uses DESC, i.code
), unused AS (
    SELECT i.code FROM estimating.items AS i
    WHERE NOT EXISTS (SELECT 1 FROM per_item AS p WHERE p.item_id = i.id)
), by_project AS (
    SELECT w.project_id, pr.name, count(*) AS uses, count(DISTINCT w.estimate_key) AS estimates,
           count(DISTINCT w.item_id) AS items, sum(w.quantity)::text AS quantity
    FROM week AS w JOIN estimating.projects AS pr ON pr.id = w.project_id
    GROUP BY w.project_id, pr.name
    ORDER BY uses DESC, w.project_id
)
SELECT (SELECT count(*) FROM week) AS usage_rows,
       (SELECT count(DISTINCT estimate_key) FROM week) AS estimates,
       (SELECT count(DISTINCT project_id) FROM week) AS projects,
       (SELECT count(*) FROM per_item) AS items,
       (SELECT coalesce(jsonb_agg(top), '[]'::jsonb) FROM top) AS top_items,
       (SELECT coalesce(jsonb_agg(new), '[]'::jsonb) FROM new) AS new_items,
       (SELECT count(*) FROM unused) AS unused_count,
       (SELECT coalesce(jsonb_agg(code ORDER BY code), '[]'::jsonb)
        FROM (SELECT code FROM unused ORDER BY code LIMIT 20) AS first) AS unused_items,
       (SELECT coalesce(jsonb_agg(by_project), '[]'::jsonb) FROM by_project) AS by_project
