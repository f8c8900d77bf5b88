-- A project's price snapshots (per item it used: unit price, quantity used and its cost),
-- newest day first.
SELECT s.snapshot_date, i.code, s.unit_price, s.material, s.labour, s.equipment, s.quantity,
       s.cost
FROM estimating.project_price_snapshots AS s
JOIN estimating.items AS i ON i.id = s.item_id
WHERE s.project_id = %(project_id)s
ORDER BY s.snapshot_date DESC, i.code
LIMIT %(limit)s
