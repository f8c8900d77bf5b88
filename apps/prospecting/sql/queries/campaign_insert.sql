-- A new campaign of the acting user (user_id defaults to nightcrew.user_id; RLS checks it).
INSERT INTO prospecting.campaigns (id, job_id, business_type, location, max_results, budget)
VALUES (%(id)s, %(job_id)s, %(business_type)s, %(location)s, %(max_results)s, %(budget)s)
RETURNING id
