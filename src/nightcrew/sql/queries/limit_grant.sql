-- The grant step after a fetch (nightcrew.limit_grant, migrations 0015 and 0018): the
-- fetched limited jobs that may start now, each with the seconds to wait for its rate slot
-- (and, for the late-entry guard, from the statement's start, and the rate's period); the others are given
-- back in the same statement (attempt not counted).
SELECT job_id, wait, slot_after, period
FROM nightcrew.limit_grant(%(jobs)s::jsonb, %(hold)s::float8, %(recheck)s::float8)
