-- Every known queue (of registered job types, of live jobs, or paused): runnable depth,
-- running jobs, whether paused, and jobs finished per minute over the last 5 minutes
-- (from the statistics rollup, never the jobs table's history).
WITH live AS (
    SELECT queue,
           count(*) FILTER (WHERE status IN ('pending', 'retrying')) AS depth,
           count(*) FILTER (WHERE status = 'processing') AS running
    FROM nightcrew.jobs
    WHERE status IN ('pending', 'retrying', 'processing')
    GROUP BY queue
), rate AS (
    SELECT t.queue, sum(s.completed + s.failed) / 5.0 AS per_minute
    FROM nightcrew.stats_minute AS s
    JOIN nightcrew.job_types AS t ON t.type = s.type
    WHERE s.minute >= date_trunc('minute', now()) - interval '5 minutes'
      AND s.minute < date_trunc('minute', now())
    GROUP BY t.queue
), names AS (
    SELECT queue FROM nightcrew.job_types
    UNION SELECT queue FROM live
    UNION SELECT queue FROM nightcrew.queue_pauses
)
SELECT n.queue AS name,
       coalesce(l.depth, 0)::bigint AS depth,
       coalesce(l.running, 0)::bigint AS running,
       p.queue IS NOT NULL AS paused,
       p.paused_at,
       coalesce(r.per_minute, 0)::float8 AS jobs_per_minute
FROM names AS n
LEFT JOIN live AS l USING (queue)
LEFT JOIN rate AS r USING (queue)
LEFT JOIN nightcrew.queue_pauses AS p ON p.queue = n.queue
ORDER BY n.queue
