INSERT INTO estimating.projects (id, name) VALUES (%(id)s, %(name)s)
ON CONFLICT (id) DO UPDATE SET name = excluded.name
RETURNING id, name, created_at
