-- Per active project: its total quantity and cost on the day, the sums of its item rows
-- just snapshotted (a project whose items have no factors has none).
INSERT INTO estimating.project_cost_snapshots AS t (
    snapshot_date, project_id, items, total_quantity, total_cost)
SELECT s.snapshot_date, s.project_id, count(*), sum(s.quantity), sum(s.cost)
FROM estimating.project_price_snapshots AS s
JOIN estimating.projects AS p ON p.id = s.project_id AND p.active
WHERE s.snapshot_date = %(day)s
GROUP BY s.snapshot_date, s.project_id
ON CONFLICT (project_id, snapshot_date) DO UPDATE SET
    items = excluded.items, total_quantity = excluded.total_quantity,
    total_cost = excluded.total_cost
