-- One campaign with its job's state (under RLS: only the acting user's own), read on the
-- request's own connection.
SELECT c.id, c.user_id, c.job_id, c.business_type, c.location, c.max_results, c.budget,
       c.budget_exhausted, c.summary, c.created_at, c.finished_at,
       j.status::text AS status, j.progress, j.stage, j.metrics
FROM prospecting.campaigns c
LEFT JOIN nightcrew.jobs j ON j.id = c.job_id
WHERE c.id = %(id)s
