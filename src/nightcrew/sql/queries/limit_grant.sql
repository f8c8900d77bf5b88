-- The grant step after a fetch (migration 0013's nightcrew.limit_grant): the fetched
-- limited jobs that may start now, each with the seconds to wait for its rate slot; the
-- others are given back in the same statement (attempt not counted).
SELECT job_id, wait
FROM nightcrew.limit_grant(%(jobs)s::jsonb, %(hold)s::float8, %(recheck)s::float8)
