-- Per watched job type: the start of the latest rollup bucket with a success inside its
-- threshold (a short backward walk when the type is healthy), and since when the rollup
-- has history. Minutes of the last hour are exact; older successes are only known to the
-- hour once compacted, so an hour counts while its end is inside the threshold (never a
-- false alert; an alert up to an hour late for thresholds beyond the kept hour).
SELECT t.type, t.threshold,
       greatest(
           (SELECT s.minute FROM nightcrew.stats_minute AS s
            WHERE s.type = t.type AND s.completed > 0
              AND s.minute >= %(now)s::timestamptz - make_interval(secs => t.threshold + 60)
            ORDER BY s.minute DESC LIMIT 1),
           (SELECT h.hour FROM nightcrew.stats_hour AS h
            WHERE h.type = t.type AND h.completed > 0
              AND h.hour >= %(now)s::timestamptz - make_interval(secs => t.threshold + 3600)
            ORDER BY h.hour DESC LIMIT 1)) AS last_success,
       least((SELECT min(minute) FROM nightcrew.stats_minute),
             (SELECT min(hour) FROM nightcrew.stats_hour)) AS history_since
FROM unnest(%(types)s::text[], %(thresholds)s::float8[]) AS t(type, threshold)
