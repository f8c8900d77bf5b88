-- A calculation job started over the API, so every member of the project sees it.
INSERT INTO estimating.calculations (job_id, project_id, requested_by)
VALUES (%(job_id)s, %(project_id)s, %(requested_by)s)
ON CONFLICT (job_id) DO NOTHING
