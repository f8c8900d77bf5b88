-- Per catalogue entry on a day: its catalogue rate then, and the spread of the project
-- rates in force (each project's latest override dated on or before the day).
-- volatility = coefficient of variation = population stddev / mean of those rates.
WITH in_force AS (
    SELECT DISTINCT ON (project_id, catalogue_id) project_id, catalogue_id, rate
    FROM estimating.project_rates
    WHERE effective_from <= %(day)s
    ORDER BY project_id, catalogue_id, effective_from DESC
), spread AS (
    SELECT catalogue_id, avg(rate) AS avg_rate, min(rate) AS min_rate, max(rate) AS max_rate,
           stddev_pop(rate) AS sd, count(*) AS n
    FROM in_force GROUP BY catalogue_id
), used AS (
    SELECT catalogue_id, count(*) AS n FROM estimating.item_factors GROUP BY catalogue_id
)
INSERT INTO estimating.catalogue_price_snapshots AS s (
    snapshot_date, catalogue_id, catalogue_rate, avg_project_rate, min_project_rate,
    max_project_rate, volatility, project_rate_count, item_count)
SELECT %(day)s, c.id,
       coalesce((SELECT h.rate FROM estimating.catalogue_rate_history AS h
                 WHERE h.catalogue_id = c.id AND h.effective_from <= %(day)s
                 ORDER BY h.effective_from DESC LIMIT 1), c.rate),
       round(p.avg_rate, 4), p.min_rate, p.max_rate,
       CASE WHEN p.avg_rate > 0 THEN round(p.sd / p.avg_rate, 6) END,
       coalesce(p.n, 0), coalesce(u.n, 0)
FROM estimating.catalogue AS c
LEFT JOIN spread AS p ON p.catalogue_id = c.id
LEFT JOIN used AS u ON u.catalogue_id = c.id
ON CONFLICT (catalogue_id, snapshot_date) DO UPDATE SET
    catalogue_rate = excluded.catalogue_rate, avg_project_rate = excluded.avg_project_rate,
    min_project_rate = excluded.min_project_rate, max_project_rate = excluded.max_project_rate,
    volatility = excluded.volatility, project_rate_count = excluded.project_rate_count,
    item_count = excluded.item_count
