-- The cost of one factor per unit of its item at a given rate (docs/estimating.md); the
-- snapshots price in SQL with it, the calculations in Python with the same formulas.
CREATE FUNCTION estimating.factor_cost(kind text, rate numeric, f estimating.item_factors)
RETURNS numeric LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE kind
        WHEN 'material' THEN rate * f.quantity_per_unit
                             * (1 + coalesce(f.wastage_percentage, 0) / 100)
        WHEN 'labour' THEN rate * f.hours_per_unit / coalesce(f.productivity_factor, 1)
                           * coalesce(f.crew_size, 1)
        ELSE rate * f.hours_per_unit * coalesce(f.utilization_factor, 1)
    END
$$;
