-- Per item: counts of the last 30 days and of the 30 days before, in one pass over the
-- 60-day window. Trend: up at >= +10 percent, down at <= -10 percent; an item new in this window
-- (nothing before) is 'up' with no percentage.
WITH counts AS (
    SELECT u.item_id,
           count(*) FILTER (WHERE u.used_at > %(now)s - interval '30 days') AS current_count,
           count(DISTINCT u.project_id)
               FILTER (WHERE u.used_at > %(now)s - interval '30 days') AS unique_projects,
           avg(u.quantity) FILTER (WHERE u.used_at > %(now)s - interval '30 days') AS avg_quantity,
           count(*) FILTER (WHERE u.used_at <= %(now)s - interval '30 days') AS previous_count
    FROM estimating.usage AS u
    WHERE u.used_at > %(now)s - interval '60 days' AND u.used_at <= %(now)s
    GROUP BY u.item_id
), estimates AS (
    SELECT item_id, count(*) AS estimate_count FROM popularity_recent GROUP BY item_id
), scored AS (
    SELECT c.*, e.estimate_count,
           CASE WHEN c.previous_count > 0
                THEN round(100.0 * (c.current_count - c.previous_count) / c.previous_count, 2)
           END AS trend_pct
    FROM counts AS c JOIN estimates AS e USING (item_id)
    WHERE c.current_count > 0
)
INSERT INTO estimating.item_popularity AS p (
    item_id, usage_count_30d, unique_projects, avg_quantity, previous_count, trend, trend_pct,
    popularity_score, estimate_count, computed_at)
SELECT item_id, current_count, unique_projects, round(avg_quantity, 4), previous_count,
       CASE WHEN previous_count = 0 OR trend_pct >= 10 THEN 'up'
            WHEN trend_pct <= -10 THEN 'down'
            ELSE 'flat' END,
       trend_pct,
       round(least(100, 100 * log(current_count + 1) / log(1000))::numeric, 2),
       estimate_count, %(now)s
FROM scored
ON CONFLICT (item_id) DO UPDATE SET
    usage_count_30d = excluded.usage_count_30d, unique_projects = excluded.unique_projects,
    avg_quantity = excluded.avg_quantity, previous_count = excluded.previous_count,
    trend = excluded.trend, trend_pct = excluded.trend_pct,
    popularity_score = excluded.popularity_score, estimate_count = excluded.estimate_count,
    computed_at = excluded.computed_at
