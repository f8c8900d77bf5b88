-- A project's daily totals (items, quantity, cost), newest day first.
SELECT snapshot_date, items, total_quantity, total_cost
FROM estimating.project_cost_snapshots
WHERE project_id = %(project_id)s
ORDER BY snapshot_date DESC
LIMIT %(limit)s
