-- Catalogue entries whose average rate (the mean project rate in force, else the catalogue
-- rate) moved more than threshold_pct between the previous month and the month of the
-- day. New spikes are recorded once per entry and month and returned.
WITH monthly AS (
    SELECT catalogue_id, date_trunc('month', snapshot_date)::date AS period,
           avg(coalesce(avg_project_rate, catalogue_rate)) AS rate
    FROM estimating.catalogue_price_snapshots
    WHERE snapshot_date >= date_trunc('month', %(day)s::date) - interval '1 month'
      AND snapshot_date <= %(day)s
    GROUP BY 1, 2
), moves AS (
    SELECT cur.catalogue_id, cur.period, prev.rate AS previous_rate, cur.rate AS current_rate,
           round(100 * (cur.rate - prev.rate) / prev.rate, 2) AS change_pct
    FROM monthly AS cur
    JOIN monthly AS prev
      ON prev.catalogue_id = cur.catalogue_id AND prev.period = cur.period - interval '1 month'
    WHERE cur.period = date_trunc('month', %(day)s::date) AND prev.rate > 0
)
INSERT INTO estimating.price_alerts AS a (
    catalogue_id, period_start, previous_rate, current_rate, change_pct, message)
SELECT m.catalogue_id, m.period, round(m.previous_rate, 4), round(m.current_rate, 4),
       m.change_pct,
       format('%%s prices %%s %%s %%%% — review active estimates', c.name,
              CASE WHEN m.change_pct > 0 THEN 'up' ELSE 'down' END,
              round(abs(m.change_pct)))
FROM moves AS m
JOIN estimating.catalogue AS c ON c.id = m.catalogue_id
WHERE abs(m.change_pct) > %(threshold_pct)s
ON CONFLICT (catalogue_id, period_start) DO NOTHING
RETURNING (SELECT code FROM estimating.catalogue WHERE id = a.catalogue_id) AS code,
          period_start, previous_rate, current_rate, change_pct, message
