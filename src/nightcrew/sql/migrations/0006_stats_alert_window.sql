-- nightcrew 0006: stats compaction keeps the last hour of minutes.
--
-- The health alerts read the rollup per minute (failure rate over the last hour, last
-- success of a watched type). Folding every closed minute into stats_hour left them an
-- hour bucket that may start up to two hours ago, so stats_compact() now folds only the
-- minutes older than the current minute and the 60 before it. Every reader still sums
-- disjoint rows: a minute is either still in stats_minute or folded into stats_hour and
-- stats_total, never both (the fold deletes what it adds).

CREATE OR REPLACE FUNCTION nightcrew.stats_compact() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    -- The current minute and the 60 closed minutes before it stay: the alert window.
    cutoff timestamptz := date_trunc('minute', now()) - interval '60 minutes';
BEGIN
    IF NOT EXISTS (SELECT FROM nightcrew.stats_minute WHERE minute < cutoff) THEN
        RETURN;
    END IF;
    -- One compactor at a time; the others just read (the figures are the same either way).
    IF NOT pg_try_advisory_xact_lock(7239461028357) THEN
        RETURN;
    END IF;
    WITH moved AS (
        DELETE FROM nightcrew.stats_minute WHERE minute < cutoff
        RETURNING *
    ), by_hour AS (
        SELECT date_trunc('hour', minute) AS hour, type, user_id,
               sum(completed)::bigint AS completed, sum(failed)::bigint AS failed,
               sum(retried)::bigint AS retried, sum(cancelled)::bigint AS cancelled,
               sum(duration_sum)::float8 AS duration_sum,
               sum(h0)::bigint AS h0, sum(h1)::bigint AS h1, sum(h2)::bigint AS h2,
               sum(h3)::bigint AS h3, sum(h4)::bigint AS h4, sum(h5)::bigint AS h5,
               sum(h6)::bigint AS h6, sum(h7)::bigint AS h7, sum(h8)::bigint AS h8,
               sum(h9)::bigint AS h9, sum(h10)::bigint AS h10, sum(h11)::bigint AS h11,
               sum(h12)::bigint AS h12, sum(h13)::bigint AS h13, sum(h14)::bigint AS h14,
               sum(h15)::bigint AS h15, sum(h16)::bigint AS h16, sum(h17)::bigint AS h17,
               sum(h18)::bigint AS h18, sum(h19)::bigint AS h19, sum(h20)::bigint AS h20,
               sum(h21)::bigint AS h21
        FROM moved
        GROUP BY 1, 2, 3
    ), hourly AS (
        INSERT INTO nightcrew.stats_hour AS s (
            hour, type, user_id, completed, failed, retried, cancelled, duration_sum,
            h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10, h11, h12, h13, h14, h15, h16, h17,
            h18, h19, h20, h21)
        SELECT * FROM by_hour
        ON CONFLICT (hour, type, user_id) DO UPDATE SET
            completed = s.completed + EXCLUDED.completed, failed = s.failed + EXCLUDED.failed,
            retried = s.retried + EXCLUDED.retried, cancelled = s.cancelled + EXCLUDED.cancelled,
            duration_sum = s.duration_sum + EXCLUDED.duration_sum,
            h0 = s.h0 + EXCLUDED.h0, h1 = s.h1 + EXCLUDED.h1, h2 = s.h2 + EXCLUDED.h2,
            h3 = s.h3 + EXCLUDED.h3, h4 = s.h4 + EXCLUDED.h4, h5 = s.h5 + EXCLUDED.h5,
            h6 = s.h6 + EXCLUDED.h6, h7 = s.h7 + EXCLUDED.h7, h8 = s.h8 + EXCLUDED.h8,
            h9 = s.h9 + EXCLUDED.h9, h10 = s.h10 + EXCLUDED.h10, h11 = s.h11 + EXCLUDED.h11,
            h12 = s.h12 + EXCLUDED.h12, h13 = s.h13 + EXCLUDED.h13, h14 = s.h14 + EXCLUDED.h14,
            h15 = s.h15 + EXCLUDED.h15, h16 = s.h16 + EXCLUDED.h16, h17 = s.h17 + EXCLUDED.h17,
            h18 = s.h18 + EXCLUDED.h18, h19 = s.h19 + EXCLUDED.h19, h20 = s.h20 + EXCLUDED.h20,
            h21 = s.h21 + EXCLUDED.h21
    )
    INSERT INTO nightcrew.stats_total AS s (
        type, user_id, completed, failed, retried, cancelled, duration_sum,
        h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10, h11, h12, h13, h14, h15, h16, h17,
        h18, h19, h20, h21)
    SELECT type, user_id, sum(completed), sum(failed), sum(retried), sum(cancelled),
           sum(duration_sum), sum(h0), sum(h1), sum(h2), sum(h3), sum(h4), sum(h5), sum(h6),
           sum(h7), sum(h8), sum(h9), sum(h10), sum(h11), sum(h12), sum(h13), sum(h14),
           sum(h15), sum(h16), sum(h17), sum(h18), sum(h19), sum(h20), sum(h21)
    FROM by_hour
    GROUP BY type, user_id
    ON CONFLICT (type, user_id) DO UPDATE SET
        completed = s.completed + EXCLUDED.completed, failed = s.failed + EXCLUDED.failed,
        retried = s.retried + EXCLUDED.retried, cancelled = s.cancelled + EXCLUDED.cancelled,
        duration_sum = s.duration_sum + EXCLUDED.duration_sum,
        h0 = s.h0 + EXCLUDED.h0, h1 = s.h1 + EXCLUDED.h1, h2 = s.h2 + EXCLUDED.h2,
        h3 = s.h3 + EXCLUDED.h3, h4 = s.h4 + EXCLUDED.h4, h5 = s.h5 + EXCLUDED.h5,
        h6 = s.h6 + EXCLUDED.h6, h7 = s.h7 + EXCLUDED.h7, h8 = s.h8 + EXCLUDED.h8,
        h9 = s.h9 + EXCLUDED.h9, h10 = s.h10 + EXCLUDED.h10, h11 = s.h11 + EXCLUDED.h11,
        h12 = s.h12 + EXCLUDED.h12, h13 = s.h13 + EXCLUDED.h13, h14 = s.h14 + EXCLUDED.h14,
        h15 = s.h15 + EXCLUDED.h15, h16 = s.h16 + EXCLUDED.h16, h17 = s.h17 + EXCLUDED.h17,
        h18 = s.h18 + EXCLUDED.h18, h19 = s.h19 + EXCLUDED.h19, h20 = s.h20 + EXCLUDED.h20,
        h21 = s.h21 + EXCLUDED.h21;
    -- Hours older than the window are only kept a while (the totals keep the counts).
    DELETE FROM nightcrew.stats_hour WHERE hour < now() - interval '8 days';
END
$$;
