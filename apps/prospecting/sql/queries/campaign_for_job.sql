-- The campaign a job runs (read by the worker, as the table owner).
SELECT id, user_id, business_type, location, max_results, budget
FROM prospecting.campaigns
WHERE id = %(id)s
