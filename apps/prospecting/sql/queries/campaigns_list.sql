-- The acting user's campaigns, newest first, with their job's state.
SELECT c.id, c.job_id, c.business_type, c.location, c.max_results, c.budget, c.summary,
       c.created_at, c.finished_at, j.status::text AS status, j.progress, j.stage, j.metrics
FROM prospecting.campaigns c
LEFT JOIN nightcrew.jobs j ON j.id = c.job_id
ORDER BY c.created_at DESC
LIMIT %(limit)s
