-- Newest first, keyset pagination on the time-ordered id.
SELECT *
FROM nightcrew.jobs
WHERE (%(status)s::text IS NULL OR status::text = %(status)s)
  AND (%(type)s::text IS NULL OR type = %(type)s)
  AND (%(before)s::uuid IS NULL OR id < %(before)s)
ORDER BY id DESC
LIMIT %(limit)s
