-- The indexes of nightcrew.jobs with their size and an estimate of the size they would have
-- if rebuilt: reltuples entries of (8-byte index tuple header + 4-byte line pointer + the
-- key columns' average width from pg_stats, aligned to 8 bytes) on pages filled to the
-- B-tree's default 90 %, plus the metapage. Right after ANALYZE both figures are current.
-- bloat is the share of the index's pages an index rebuild would free (0 when it is as
-- small as expected).
WITH idx AS (
    SELECT c.oid, c.relname, c.relpages, greatest(c.reltuples, 0) AS reltuples,
           i.indkey, i.indrelid
    FROM pg_index AS i
    JOIN pg_class AS c ON c.oid = i.indexrelid
    JOIN pg_am AS am ON am.oid = c.relam
    WHERE i.indrelid = 'nightcrew.jobs'::regclass AND am.amname = 'btree' AND i.indisvalid
), widths AS (
    SELECT idx.oid, sum(coalesce(s.avg_width, 8)) AS key_width
    FROM idx
    CROSS JOIN LATERAL unnest(idx.indkey::int2[]) AS k(attnum)
    JOIN pg_attribute AS a ON a.attrelid = idx.indrelid AND a.attnum = k.attnum
    LEFT JOIN pg_stats AS s
        ON s.schemaname = 'nightcrew' AND s.tablename = 'jobs' AND s.attname = a.attname
    GROUP BY idx.oid
), expected AS (
    SELECT idx.relname, idx.relpages,
           1 + ceil(idx.reltuples * (12 + 8 * ceil(w.key_width / 8.0))
                    / ((current_setting('block_size')::int - 40) * 0.9))::bigint AS pages
    FROM idx JOIN widths AS w ON w.oid = idx.oid
)
SELECT relname AS index, relpages AS pages, pages AS expected_pages,
       CASE WHEN relpages > 0 THEN greatest(0, 1 - pages::float8 / relpages) ELSE 0 END
           AS bloat
FROM expected
ORDER BY relname
