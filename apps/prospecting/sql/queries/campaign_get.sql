-- One campaign (under RLS: only the acting user's own).
SELECT id, user_id, job_id, business_type, location, max_results, budget, budget_exhausted,
       summary, created_at, finished_at
FROM prospecting.campaigns
WHERE id = %(id)s
