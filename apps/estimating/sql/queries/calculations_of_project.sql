-- A project's calculations, newest first.
SELECT job_id, requested_by, requested_at, completed_at, result
FROM estimating.calculations
WHERE project_id = %(project_id)s
ORDER BY requested_at DESC, job_id
LIMIT %(limit)s
