INSERT INTO estimating.items AS i (code, name, unit, category)
VALUES (%(code)s, %(name)s, %(unit)s, %(category)s)
ON CONFLICT (code) DO UPDATE
    SET name = excluded.name, unit = excluded.unit, category = excluded.category
RETURNING id
