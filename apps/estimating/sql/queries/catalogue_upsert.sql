-- Create or update catalogue entries (a code keeps its kind: rows of another kind are not
-- returned, and the caller refuses them); every stored rate is also dated today.
WITH up AS (
    INSERT INTO estimating.catalogue AS c (kind, code, name, unit, rate)
    SELECT * FROM unnest(%(kinds)s::text[], %(codes)s::text[], %(names)s::text[],
                         %(units)s::text[], %(rates)s::numeric[])
    ON CONFLICT (code) DO UPDATE
        SET name = excluded.name, unit = excluded.unit, rate = excluded.rate, updated_at = now()
        WHERE c.kind = excluded.kind
    RETURNING id, code, rate
), dated AS (
    INSERT INTO estimating.catalogue_rate_history (catalogue_id, effective_from, rate)
    SELECT id, current_date, rate FROM up
    ON CONFLICT (catalogue_id, effective_from) DO UPDATE SET rate = excluded.rate
)
SELECT code FROM up
