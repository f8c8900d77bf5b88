-- Every stored limit key: the limits in force, the code's, and current use (live
-- concurrency slots; how far ahead the rate's slots are taken).
SELECT l.key, e.rate_count, e.rate_seconds, e.concurrency,
       l.code_rate_count, l.code_rate_seconds, l.code_concurrency, l.overridden,
       (SELECT count(*) FROM nightcrew.limit_slots AS s
        JOIN nightcrew.jobs AS j ON j.id = s.job_id AND j.attempts = s.attempt
                                AND j.status = 'processing'
        WHERE s.key = l.key) AS running,
       greatest(0, extract(epoch FROM coalesce(l.tat, now()) - now()))::float8
           AS backlog_seconds,
       l.updated_at
FROM nightcrew.limits AS l
CROSS JOIN LATERAL nightcrew.limit_effective(l) AS e
ORDER BY l.key
