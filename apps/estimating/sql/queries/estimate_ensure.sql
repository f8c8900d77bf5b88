INSERT INTO estimating.estimates (project_id, estimate_id)
VALUES (%(project_id)s, %(estimate_id)s)
ON CONFLICT (project_id, estimate_id) DO NOTHING
