-- nightcrew 0016: the statement that finishes jobs counts and announces its own outcomes.
--
-- Until now the jobs_after_update trigger found a batch's outcomes by joining the
-- statement's old and new transition tables: 4.5 of a 500-job completion's 12.7 ms in the
-- database (most of the trigger work of a drain). finish_jobs already returns every row it
-- changed, with its new status (the old one is always 'processing'), so it hands them to
-- nightcrew.jobs_finished() in the same statement: statistics and the nightcrew_events ids
-- without transition tables, then a statement-local mark ('nightcrew.counted') that tells
-- jobs_after_update this statement's rows are done; the trigger clears the mark and returns.
-- Every other statement (rescue, cancel, retry, dependents, progress, fetch, a hand-written
-- UPDATE) is counted and announced by the trigger as before. The mark is transaction-local
-- and consumed by the first jobs_after_update after it is set: the finishing statement's own
-- (it fires first of the triggers on jobs, by name, before any cascade the others start).

-- Outcomes already grouped by the caller's rows: one upsert per (type, user) into the
-- current minute's shard, durations of completed jobs into the log-scale histogram.
-- PL/pgSQL, so the upsert is planned once per session (a SQL function with a SET clause is
-- planned at every call).
CREATE FUNCTION nightcrew.count_outcomes(
    types text[], users text[], statuses text[], secs float8[]
) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
    WITH moved AS (
        SELECT *
        FROM unnest(count_outcomes.types, count_outcomes.users, count_outcomes.statuses,
                    count_outcomes.secs) AS m(type, user_id, status, secs)
    ), outcomes AS (
        -- Grouped first: the pivot below then reads a few rows, not one per job.
        SELECT type, user_id, status,
               CASE WHEN status <> 'completed' OR secs IS NULL THEN NULL
                    WHEN secs <= 0.005 THEN 0
                    ELSE least(21, ceil(ln(secs / 0.005) / ln(2.0)))::int END AS bucket,
               count(*) AS n, sum(secs) AS secs
        FROM moved
        GROUP BY 1, 2, 3, 4
    )
    INSERT INTO nightcrew.stats_minute AS s (
        minute, type, user_id, shard, completed, failed, retried, cancelled, duration_sum,
        h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10, h11, h12, h13, h14, h15, h16, h17,
        h18, h19, h20, h21)
    SELECT date_trunc('minute', now()), type, user_id, (pg_backend_pid() % 8)::smallint,
           coalesce(sum(n) FILTER (WHERE status = 'completed'), 0),
           coalesce(sum(n) FILTER (WHERE status = 'failed'), 0),
           coalesce(sum(n) FILTER (WHERE status IN ('retrying', 'pending')), 0),
           coalesce(sum(n) FILTER (WHERE status = 'cancelled'), 0),
           coalesce(sum(secs) FILTER (WHERE bucket IS NOT NULL), 0),
           coalesce(sum(n) FILTER (WHERE bucket = 0), 0),
           coalesce(sum(n) FILTER (WHERE bucket = 1), 0),
           coalesce(sum(n) FILTER (WHERE bucket = 2), 0),
           coalesce(sum(n) FILTER (WHERE bucket = 3), 0),
           coalesce(sum(n) FILTER (WHERE bucket = 4), 0),
           coalesce(sum(n) FILTER (WHERE bucket = 5), 0),
           coalesce(sum(n) FILTER (WHERE bucket = 6), 0),
           coalesce(sum(n) FILTER (WHERE bucket = 7), 0),
           coalesce(sum(n) FILTER (WHERE bucket = 8), 0),
           coalesce(sum(n) FILTER (WHERE bucket = 9), 0),
           coalesce(sum(n) FILTER (WHERE bucket = 10), 0),
           coalesce(sum(n) FILTER (WHERE bucket = 11), 0),
           coalesce(sum(n) FILTER (WHERE bucket = 12), 0),
           coalesce(sum(n) FILTER (WHERE bucket = 13), 0),
           coalesce(sum(n) FILTER (WHERE bucket = 14), 0),
           coalesce(sum(n) FILTER (WHERE bucket = 15), 0),
           coalesce(sum(n) FILTER (WHERE bucket = 16), 0),
           coalesce(sum(n) FILTER (WHERE bucket = 17), 0),
           coalesce(sum(n) FILTER (WHERE bucket = 18), 0),
           coalesce(sum(n) FILTER (WHERE bucket = 19), 0),
           coalesce(sum(n) FILTER (WHERE bucket = 20), 0),
           coalesce(sum(n) FILTER (WHERE bucket = 21), 0)
    FROM outcomes
    GROUP BY type, user_id
    ON CONFLICT (minute, type, user_id, shard) DO UPDATE SET
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
END
$$;

-- One nightcrew_events notification per 200 ids (a payload must stay under 8000 bytes).
CREATE FUNCTION nightcrew.announce_jobs(ids uuid[]) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF ids IS NOT NULL THEN
        FOR i IN 1 .. cardinality(ids) BY 200 LOOP
            PERFORM pg_notify('nightcrew_events', array_to_string(ids[i:i + 199], ','));
        END LOOP;
    END IF;
END
$$;

-- Called once by finish_jobs with every row it moved out of 'processing' (ids, types,
-- users or '', new statuses, run time in seconds): counts the outcomes, announces every
-- row (each changed status), and marks the statement as counted for jobs_after_update.
CREATE FUNCTION nightcrew.jobs_finished(
    ids uuid[], types text[], users text[], statuses text[], secs float8[]
) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    counted text[] := ARRAY['completed', 'failed', 'cancelled', 'retrying'];
BEGIN
    IF ids IS NULL THEN
        RETURN 0;
    END IF;
    -- Released attempts (back to 'pending' at shutdown) are no outcome.
    IF statuses <@ counted THEN
        PERFORM nightcrew.count_outcomes(types, users, statuses, secs);
    ELSE
        PERFORM nightcrew.count_outcomes(array_agg(t), array_agg(u), array_agg(s), array_agg(d))
        FROM unnest(types, users, statuses, secs) AS m(t, u, s, d)
        WHERE s = ANY (counted);
    END IF;
    PERFORM nightcrew.announce_jobs(ids);
    PERFORM set_config('nightcrew.counted', 'on', true);
    RETURN cardinality(ids);
END
$$;

CREATE OR REPLACE FUNCTION nightcrew.jobs_after_update() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    changed     uuid[];
    o_types     text[];
    o_users     text[];
    o_statuses  text[];
    o_secs      float8[];
BEGIN
    -- The statement counted and announced its own rows (finish_jobs, jobs_finished()).
    IF current_setting('nightcrew.counted', true) = 'on' THEN
        PERFORM set_config('nightcrew.counted', '', true);
        RETURN NULL;
    END IF;
    -- Every row in 'processing' (fetch, lease renewal, progress): no outcome to count.
    IF NOT EXISTS (SELECT 1 FROM new_rows WHERE status <> 'processing') THEN
        SELECT array_agg(n.id) INTO changed
        FROM new_rows AS n JOIN old_rows AS o ON o.id = n.id
        WHERE (n.status, n.progress, n.stage, n.metrics)
              IS DISTINCT FROM (o.status, o.progress, o.stage, o.metrics);
    ELSE
        WITH moved AS (
            SELECT n.id, n.type, coalesce(n.user_id, '') AS user_id,
                   n.status::text AS status,
                   extract(epoch FROM n.completed_at - n.started_at)::float8 AS secs,
                   (n.status, n.progress, n.stage, n.metrics)
                       IS DISTINCT FROM (o.status, o.progress, o.stage, o.metrics) AS visible,
                   n.status <> o.status
                       AND (n.status IN ('completed', 'failed', 'cancelled', 'retrying')
                            OR (n.status = 'pending' AND o.status IN ('failed', 'cancelled')))
                       AS outcome
            FROM new_rows AS n JOIN old_rows AS o ON o.id = n.id
        )
        SELECT array_agg(id) FILTER (WHERE visible), array_agg(type) FILTER (WHERE outcome),
               array_agg(user_id) FILTER (WHERE outcome), array_agg(status) FILTER (WHERE outcome),
               array_agg(secs) FILTER (WHERE outcome)
        INTO changed, o_types, o_users, o_statuses, o_secs
        FROM moved;
        IF o_types IS NOT NULL THEN
            PERFORM nightcrew.count_outcomes(o_types, o_users, o_statuses, o_secs);
        END IF;
    END IF;

    -- Lease renewals change nothing visible and send nothing.
    PERFORM nightcrew.announce_jobs(changed);
    RETURN NULL;
END
$$;
