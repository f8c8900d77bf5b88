-- The factors of some items with their catalogue entries and catalogue rates.
SELECT f.item_id, c.id AS catalogue_id, c.kind, c.code, c.name, c.unit,
       c.rate AS catalogue_rate, f.quantity_per_unit, f.wastage_percentage, f.hours_per_unit,
       f.productivity_factor, f.crew_size, f.utilization_factor
FROM estimating.item_factors AS f
JOIN estimating.catalogue AS c ON c.id = f.catalogue_id
WHERE f.item_id = ANY(%(item_ids)s)
ORDER BY f.item_id, c.kind, c.code
