-- Completed-job duration histograms of some job types over the last 7 days, from the stats
-- rollup (hours plus the minutes not compacted yet), never the jobs table: the median
-- duration a running job without a progress rate of its own is expected to take.
WITH rollup AS (
    SELECT type, h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10, h11, h12, h13, h14, h15, h16,
           h17, h18, h19, h20, h21
    FROM nightcrew.stats_hour
    WHERE type = ANY(%(types)s::text[]) AND hour >= now() - interval '7 days'
    UNION ALL
    SELECT type, h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10, h11, h12, h13, h14, h15, h16,
           h17, h18, h19, h20, h21
    FROM nightcrew.stats_minute
    WHERE type = ANY(%(types)s::text[])
)
SELECT type,
       ARRAY[sum(h0), sum(h1), sum(h2), sum(h3), sum(h4), sum(h5), sum(h6), sum(h7), sum(h8),
             sum(h9), sum(h10), sum(h11), sum(h12), sum(h13), sum(h14), sum(h15), sum(h16),
             sum(h17), sum(h18), sum(h19), sum(h20), sum(h21)]::bigint[] AS buckets
FROM rollup
GROUP BY type
