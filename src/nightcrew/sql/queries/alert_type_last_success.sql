-- Per watched job type: the latest rollup minute with a success inside its threshold (a
-- short backward walk when the type is healthy), and since when the rollup has history.
SELECT t.type, t.threshold,
       (SELECT s.minute FROM nightcrew.stats_minute AS s
        WHERE s.type = t.type AND s.completed > 0
          AND s.minute >= %(now)s::timestamptz - make_interval(secs => t.threshold + 60)
        ORDER BY s.minute DESC LIMIT 1) AS last_success,
       (SELECT min(minute) FROM nightcrew.stats_minute) AS history_since
FROM unnest(%(types)s::text[], %(thresholds)s::float8[]) AS t(type, threshold)
