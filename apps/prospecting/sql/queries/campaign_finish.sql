-- A campaign's end: its summary and whether the budget stopped it.
UPDATE prospecting.campaigns
SET summary = %(summary)s, budget_exhausted = %(budget_exhausted)s, finished_at = now()
WHERE id = %(id)s
