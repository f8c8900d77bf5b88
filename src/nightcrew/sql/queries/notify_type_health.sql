-- Per job type over the last 24 hours of the rollup: the last minute with a success and the
-- failures recorded after it (the current failure streak, to the minute).
WITH recent AS (
    SELECT type, minute, completed, failed
    FROM nightcrew.stats_minute
    WHERE minute >= date_trunc('minute', now() - interval '24 hours')
), last_ok AS (
    SELECT type, max(minute) AS minute FROM recent WHERE completed > 0 GROUP BY type
)
SELECT r.type, l.minute AS last_success_at,
       coalesce(sum(r.failed) FILTER (WHERE l.minute IS NULL OR r.minute > l.minute), 0)::bigint
           AS failure_streak
FROM recent AS r LEFT JOIN last_ok AS l ON l.type = r.type
GROUP BY r.type, l.minute
ORDER BY r.type
