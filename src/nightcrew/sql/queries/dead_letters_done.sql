-- Forget dead letters whose email went out (or was given up), and the per-minute counters
-- of minutes long closed (a late commit can still number into the last few).
WITH gone AS (
    DELETE FROM nightcrew.dead_letters WHERE job_id = ANY(%(ids)s::uuid[])
)
DELETE FROM nightcrew.dead_letter_minutes WHERE minute < %(before)s::timestamptz - interval '10 minutes'
