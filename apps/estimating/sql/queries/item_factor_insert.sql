INSERT INTO estimating.item_factors (
    item_id, catalogue_id, quantity_per_unit, wastage_percentage, hours_per_unit,
    productivity_factor, crew_size, utilization_factor)
VALUES (%(item_id)s, %(catalogue_id)s, %(quantity_per_unit)s, %(wastage_percentage)s,
        %(hours_per_unit)s, %(productivity_factor)s, %(crew_size)s, %(utilization_factor)s)
