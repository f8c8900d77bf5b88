-- Live jobs by state, type and queue for /metrics; each branch matches one partial index.
SELECT status::text AS status, type, queue, count(*) AS jobs
FROM nightcrew.jobs WHERE status IN ('pending', 'retrying') AND pending_parents = 0
GROUP BY 1, 2, 3
UNION ALL
SELECT status::text, type, queue, count(*)
FROM nightcrew.jobs WHERE status = 'processing'
GROUP BY 1, 2, 3
