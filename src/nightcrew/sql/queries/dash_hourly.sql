-- Jobs finished per hour over the last 24 hours (the rollup, never the jobs table;
-- row-level security: a user's own jobs).
WITH rollup AS (
    SELECT hour, completed, failed, cancelled FROM nightcrew.stats_hour
    WHERE hour >= date_trunc('hour', now() - interval '23 hours')
    UNION ALL
    SELECT date_trunc('hour', minute), completed, failed, cancelled FROM nightcrew.stats_minute
    WHERE minute >= date_trunc('hour', now() - interval '23 hours')
)
SELECT h.hour, coalesce(sum(r.completed), 0)::bigint AS completed,
       coalesce(sum(r.failed), 0)::bigint AS failed,
       coalesce(sum(r.cancelled), 0)::bigint AS cancelled
FROM generate_series(date_trunc('hour', now() - interval '23 hours'), date_trunc('hour', now()),
                     interval '1 hour') AS h(hour)
LEFT JOIN rollup AS r ON r.hour = h.hour
GROUP BY h.hour
ORDER BY h.hour
