-- Per active project and library item it uses: the unit price from the project's rates in
-- force on the day (the catalogue rate of that day where it has none), the quantity of the
-- item in the project's live usage and its cost, round(unit_price * quantity, 2), with the
-- unit price as stored (4 decimals). Inactive projects are skipped.
WITH in_force AS (
    SELECT DISTINCT ON (project_id, catalogue_id) project_id, catalogue_id, rate
    FROM estimating.project_rates
    WHERE effective_from <= %(day)s
    ORDER BY project_id, catalogue_id, effective_from DESC
), used AS (
    SELECT u.project_id, u.item_id, sum(u.quantity) AS quantity
    FROM estimating.usage AS u
    JOIN estimating.projects AS p ON p.id = u.project_id AND p.active
    GROUP BY u.project_id, u.item_id
), priced AS (
    SELECT u.project_id, u.item_id, u.quantity, round(sum(x.cost), 4) AS unit_price,
           round(coalesce(sum(x.cost) FILTER (WHERE c.kind = 'material'), 0), 4) AS material,
           round(coalesce(sum(x.cost) FILTER (WHERE c.kind = 'labour'), 0), 4) AS labour,
           round(coalesce(sum(x.cost) FILTER (WHERE c.kind = 'equipment'), 0), 4) AS equipment
    FROM used AS u
    JOIN estimating.item_factors AS f ON f.item_id = u.item_id
    JOIN estimating.catalogue AS c ON c.id = f.catalogue_id
    JOIN estimating.catalogue_price_snapshots AS p
      ON p.catalogue_id = f.catalogue_id AND p.snapshot_date = %(day)s
    LEFT JOIN in_force AS r ON r.project_id = u.project_id AND r.catalogue_id = f.catalogue_id
    CROSS JOIN LATERAL (SELECT estimating.factor_cost(
        c.kind, coalesce(r.rate, p.catalogue_rate), f) AS cost) AS x
    GROUP BY u.project_id, u.item_id, u.quantity
)
INSERT INTO estimating.project_price_snapshots AS s (
    snapshot_date, project_id, item_id, unit_price, material, labour, equipment, quantity, cost)
SELECT %(day)s, project_id, item_id, unit_price, material, labour, equipment, quantity,
       round(unit_price * quantity, 2)
FROM priced
ON CONFLICT (project_id, item_id, snapshot_date) DO UPDATE SET
    unit_price = excluded.unit_price, material = excluded.material,
    labour = excluded.labour, equipment = excluded.equipment,
    quantity = excluded.quantity, cost = excluded.cost
