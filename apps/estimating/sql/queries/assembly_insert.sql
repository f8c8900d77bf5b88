INSERT INTO estimating.assemblies AS a (code, name, parent_id)
VALUES (%(code)s, %(name)s, %(parent_id)s)
ON CONFLICT (code) DO UPDATE SET name = excluded.name, parent_id = excluded.parent_id
RETURNING id
