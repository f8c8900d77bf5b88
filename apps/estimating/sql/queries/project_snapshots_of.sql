-- A project's price snapshots (its unit price of each item it used), newest day first.
SELECT s.snapshot_date, i.code, s.unit_price, s.material, s.labour, s.equipment
FROM estimating.project_price_snapshots AS s
JOIN estimating.items AS i ON i.id = s.item_id
WHERE s.project_id = %(project_id)s
ORDER BY s.snapshot_date DESC, i.code
LIMIT %(limit)s
