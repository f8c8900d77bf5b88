-- The result of a calculation job (run by the worker; the row may not exist yet when the
-- job was not started over the API).
INSERT INTO estimating.calculations (job_id, project_id, requested_by, completed_at, result)
VALUES (%(job_id)s, %(project_id)s, %(requested_by)s, now(), %(result)s)
ON CONFLICT (job_id) DO UPDATE SET completed_at = now(), result = excluded.result
