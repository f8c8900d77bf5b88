-- Which of these projects the acting user may see (row-level security does the filtering).
SELECT id FROM estimating.projects WHERE id = ANY(%(ids)s)
