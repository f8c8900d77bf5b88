-- The grant step after a fetch (nightcrew.limit_grant, migrations 0015 and 0018): the
-- fetched limited jobs that may start now, each with the seconds to wait for its rate slot
-- (and to it from the statement's start, for the late-entry guard); the others are given
-- back in the same statement (attempt not counted).
SELECT job_id, wait, slot_after
FROM nightcrew.limit_grant(%(jobs)s::jsonb, %(hold)s::float8, %(recheck)s::float8)
