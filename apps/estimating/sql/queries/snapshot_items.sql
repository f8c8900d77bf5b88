-- Per library item on a day: its market unit price, each factor priced at the average
-- project rate in force (the catalogue rate where no project overrides the entry).
INSERT INTO estimating.item_price_snapshots AS s (
    snapshot_date, item_id, unit_price, material, labour, equipment)
SELECT %(day)s, f.item_id, round(sum(x.cost), 4),
       round(coalesce(sum(x.cost) FILTER (WHERE c.kind = 'material'), 0), 4),
       round(coalesce(sum(x.cost) FILTER (WHERE c.kind = 'labour'), 0), 4),
       round(coalesce(sum(x.cost) FILTER (WHERE c.kind = 'equipment'), 0), 4)
FROM estimating.item_factors AS f
JOIN estimating.catalogue AS c ON c.id = f.catalogue_id
JOIN estimating.catalogue_price_snapshots AS p
  ON p.catalogue_id = f.catalogue_id AND p.snapshot_date = %(day)s
CROSS JOIN LATERAL (SELECT estimating.factor_cost(
    c.kind, coalesce(p.avg_project_rate, p.catalogue_rate), f) AS cost) AS x
GROUP BY f.item_id
ON CONFLICT (item_id, snapshot_date) DO UPDATE SET
    unit_price = excluded.unit_price, material = excluded.material,
    labour = excluded.labour, equipment = excluded.equipment
