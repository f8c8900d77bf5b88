-- The last 24 hours, to the hour (from the start of the hour 24 h ago), per job type:
-- hourly rows plus the not yet compacted minutes; never the jobs table.
-- last_success_at is the start of the newest rollup bucket with a success (its minute
-- while that minute is not compacted yet, else its hour); failure_streak counts the
-- failures recorded in the buckets after it (all of the window's when there is none).
WITH rollup AS (
    SELECT * FROM nightcrew.stats_hour
    WHERE hour >= date_trunc('hour', now() - interval '24 hours')
    UNION ALL
    SELECT minute, type, user_id, completed, failed, retried, cancelled, duration_sum,
           h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10, h11, h12, h13, h14, h15, h16, h17,
           h18, h19, h20, h21
    FROM nightcrew.stats_minute
    WHERE minute >= date_trunc('hour', now() - interval '24 hours')
), per_type AS (
    SELECT type,
           sum(completed)::bigint AS completed, sum(failed)::bigint AS failed,
           sum(retried)::bigint AS retried, sum(cancelled)::bigint AS cancelled,
           sum(duration_sum)::float8 AS duration_sum,
           ARRAY[sum(h0), sum(h1), sum(h2), sum(h3), sum(h4), sum(h5), sum(h6), sum(h7),
                 sum(h8), sum(h9), sum(h10), sum(h11), sum(h12), sum(h13), sum(h14),
                 sum(h15), sum(h16), sum(h17), sum(h18), sum(h19), sum(h20),
                 sum(h21)]::bigint[] AS buckets,
           max(hour) FILTER (WHERE completed > 0) AS last_success_at,
           -- the rows with failures, to sum those after the last success
           array_agg(hour) FILTER (WHERE failed > 0) AS failed_at,
           array_agg(failed) FILTER (WHERE failed > 0) AS failed_n
    FROM rollup
    GROUP BY type
)
SELECT type, completed, failed, retried, cancelled, duration_sum, buckets, last_success_at,
       (SELECT coalesce(sum(f.n), 0)::bigint FROM unnest(failed_at, failed_n) AS f(at, n)
        WHERE last_success_at IS NULL OR f.at > last_success_at) AS failure_streak
FROM per_type AS p
ORDER BY type
