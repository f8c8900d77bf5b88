-- Sync, step 3: schedules no longer defined in code stop firing (kept for their history).
UPDATE nightcrew.schedules
SET in_code = (name = ANY(%(names)s::text[])), updated_at = now()
WHERE in_code IS DISTINCT FROM (name = ANY(%(names)s::text[]))
