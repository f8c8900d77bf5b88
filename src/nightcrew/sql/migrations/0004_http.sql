-- nightcrew 0004: the HTTP API's tables, row-level security and the stats rollup.
--
-- * nightcrew_api: a NOLOGIN role the API server switches to per transaction
--   (SET LOCAL ROLE), after setting nightcrew.user_id / nightcrew.is_admin. Policies on the
--   tables below let it see only the acting user's rows. Workers and the App's own
--   connections run as the table owner, which RLS does not restrict (no FORCE).
-- * api_keys, audit_log.
-- * stats_minute: per (minute, type, user, shard) counters and a duration histogram,
--   maintained by one statement-level trigger on jobs UPDATE (nothing on the INSERT path),
--   which also sends one NOTIFY per statement naming the jobs whose visible state changed.

-- Roles are cluster-wide: every database migrated on this server shares it.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'nightcrew_api') THEN
        CREATE ROLE nightcrew_api NOLOGIN;
    END IF;
    -- A non-superuser owner must be a member to SET ROLE to it (superusers always may).
    IF NOT pg_has_role(current_user, 'nightcrew_api', 'MEMBER') THEN
        EXECUTE format('GRANT nightcrew_api TO %I', current_user);
    END IF;
END
$$;

-- ---- API keys: only the sha256 of a key is stored ----------------------------------------

CREATE TABLE nightcrew.api_keys (
    id         uuid PRIMARY KEY,
    user_id    text NOT NULL CHECK (user_id ~ '^[A-Za-z0-9_.@-]{1,100}$'),
    is_admin   boolean NOT NULL DEFAULT false,
    key_hash   bytea NOT NULL UNIQUE,
    prefix     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

-- ---- audit log -----------------------------------------------------------------------------

CREATE TABLE nightcrew.audit_log (
    id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at     timestamptz NOT NULL DEFAULT now(),
    actor  text NOT NULL,
    action text NOT NULL,
    target text,
    before jsonb,
    after  jsonb
);
CREATE INDEX audit_log_target_idx ON nightcrew.audit_log (target, id);

-- ---- per-user listing ----------------------------------------------------------------------
-- Partial, so jobs enqueued without a user (the core producer path) skip it.
CREATE INDEX jobs_user_idx ON nightcrew.jobs (user_id, id) WHERE user_id IS NOT NULL;

-- ---- stats rollup --------------------------------------------------------------------------
-- h0..h21: completed-job durations; bucket i holds durations <= 0.005 * 2^i seconds
-- (h0 <= 5 ms ... h20 <= ~87 min), h21 everything longer.
CREATE TABLE nightcrew.stats_minute (
    minute       timestamptz NOT NULL,
    type         text NOT NULL,
    user_id      text NOT NULL,   -- '' for jobs without a user
    shard        smallint NOT NULL,
    completed    bigint NOT NULL DEFAULT 0,
    failed       bigint NOT NULL DEFAULT 0,
    retried      bigint NOT NULL DEFAULT 0,
    cancelled    bigint NOT NULL DEFAULT 0,
    duration_sum double precision NOT NULL DEFAULT 0,
    h0 bigint NOT NULL DEFAULT 0, h1 bigint NOT NULL DEFAULT 0, h2 bigint NOT NULL DEFAULT 0,
    h3 bigint NOT NULL DEFAULT 0, h4 bigint NOT NULL DEFAULT 0, h5 bigint NOT NULL DEFAULT 0,
    h6 bigint NOT NULL DEFAULT 0, h7 bigint NOT NULL DEFAULT 0, h8 bigint NOT NULL DEFAULT 0,
    h9 bigint NOT NULL DEFAULT 0, h10 bigint NOT NULL DEFAULT 0, h11 bigint NOT NULL DEFAULT 0,
    h12 bigint NOT NULL DEFAULT 0, h13 bigint NOT NULL DEFAULT 0, h14 bigint NOT NULL DEFAULT 0,
    h15 bigint NOT NULL DEFAULT 0, h16 bigint NOT NULL DEFAULT 0, h17 bigint NOT NULL DEFAULT 0,
    h18 bigint NOT NULL DEFAULT 0, h19 bigint NOT NULL DEFAULT 0, h20 bigint NOT NULL DEFAULT 0,
    h21 bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (minute, type, user_id, shard)
);

CREATE FUNCTION nightcrew.jobs_after_update() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    changed uuid[];
BEGIN
    WITH moved AS (
        SELECT n.id, n.type, coalesce(n.user_id, '') AS user_id,
               n.status::text AS status, o.status::text AS old_status,
               extract(epoch FROM n.completed_at - n.started_at)::float8 AS secs,
               (n.status, n.progress, n.stage, n.metrics)
                   IS DISTINCT FROM (o.status, o.progress, o.stage, o.metrics) AS visible
        FROM new_rows AS n JOIN old_rows AS o ON o.id = n.id
    ), outcomes AS (
        SELECT type, user_id, status, old_status, secs,
               CASE WHEN status <> 'completed' OR secs IS NULL THEN NULL
                    WHEN secs <= 0.005 THEN 0
                    ELSE least(21, ceil(ln(secs / 0.005) / ln(2.0)))::int END AS bucket
        FROM moved
        WHERE status <> old_status
          AND (status IN ('completed', 'failed', 'cancelled', 'retrying')
               OR (status = 'pending' AND old_status IN ('failed', 'cancelled')))
    ), upsert AS (
        INSERT INTO nightcrew.stats_minute AS s (
            minute, type, user_id, shard, completed, failed, retried, cancelled, duration_sum,
            h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10, h11, h12, h13, h14, h15, h16, h17,
            h18, h19, h20, h21)
        SELECT date_trunc('minute', now()), type, user_id, (pg_backend_pid() % 8)::smallint,
               count(*) FILTER (WHERE status = 'completed'),
               count(*) FILTER (WHERE status = 'failed'),
               count(*) FILTER (WHERE status IN ('retrying', 'pending')),
               count(*) FILTER (WHERE status = 'cancelled'),
               coalesce(sum(secs) FILTER (WHERE bucket IS NOT NULL), 0),
               count(*) FILTER (WHERE bucket = 0), count(*) FILTER (WHERE bucket = 1),
               count(*) FILTER (WHERE bucket = 2), count(*) FILTER (WHERE bucket = 3),
               count(*) FILTER (WHERE bucket = 4), count(*) FILTER (WHERE bucket = 5),
               count(*) FILTER (WHERE bucket = 6), count(*) FILTER (WHERE bucket = 7),
               count(*) FILTER (WHERE bucket = 8), count(*) FILTER (WHERE bucket = 9),
               count(*) FILTER (WHERE bucket = 10), count(*) FILTER (WHERE bucket = 11),
               count(*) FILTER (WHERE bucket = 12), count(*) FILTER (WHERE bucket = 13),
               count(*) FILTER (WHERE bucket = 14), count(*) FILTER (WHERE bucket = 15),
               count(*) FILTER (WHERE bucket = 16), count(*) FILTER (WHERE bucket = 17),
               count(*) FILTER (WHERE bucket = 18), count(*) FILTER (WHERE bucket = 19),
               count(*) FILTER (WHERE bucket = 20), count(*) FILTER (WHERE bucket = 21)
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
            h21 = s.h21 + EXCLUDED.h21
    )
    SELECT array_agg(id) INTO changed FROM moved WHERE visible;

    -- One notification per 200 changed jobs (a payload must stay under 8000 bytes);
    -- lease renewals change nothing visible and send nothing.
    IF changed IS NOT NULL THEN
        FOR i IN 1 .. cardinality(changed) BY 200 LOOP
            PERFORM pg_notify('nightcrew_events', array_to_string(changed[i:i + 199], ','));
        END LOOP;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_after_update
    AFTER UPDATE ON nightcrew.jobs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION nightcrew.jobs_after_update();

-- ---- compaction: closed minutes fold into hours (for the 24 h window) and totals --------
-- The trigger only ever writes the current minute (sharded); stats_compact() moves every
-- closed minute into stats_hour (one row per hour, type and user) and stats_total (one row
-- per type and user, for /metrics), so the stats query reads ~25 rows per type and user
-- instead of 1,440 x shards. It runs from the stats and metrics routes (cheap when there
-- is nothing to fold) and may run from any maintenance job.
CREATE TABLE nightcrew.stats_hour (LIKE nightcrew.stats_minute INCLUDING DEFAULTS);
ALTER TABLE nightcrew.stats_hour DROP COLUMN shard;
ALTER TABLE nightcrew.stats_hour RENAME COLUMN minute TO hour;
ALTER TABLE nightcrew.stats_hour ADD PRIMARY KEY (hour, type, user_id);

CREATE TABLE nightcrew.stats_total (LIKE nightcrew.stats_minute INCLUDING DEFAULTS);
ALTER TABLE nightcrew.stats_total DROP COLUMN shard, DROP COLUMN minute;
ALTER TABLE nightcrew.stats_total ADD PRIMARY KEY (type, user_id);

CREATE FUNCTION nightcrew.stats_compact() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM nightcrew.stats_minute
                   WHERE minute < date_trunc('minute', now())) THEN
        RETURN;
    END IF;
    -- One compactor at a time; the others just read (the figures are the same either way).
    IF NOT pg_try_advisory_xact_lock(7239461028357) THEN
        RETURN;
    END IF;
    WITH moved AS (
        DELETE FROM nightcrew.stats_minute WHERE minute < date_trunc('minute', now())
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

-- Queue depth and running count of the acting user (admins: everyone), as the owner: under
-- RLS the status conditions (enum equality is not leakproof) could not use the partial
-- indexes and would scan the whole history. The user filter mirrors the jobs policy and
-- reads the same transaction settings, so it shows no more than RLS would.
CREATE FUNCTION nightcrew.stats_backlog(OUT queue_depth bigint, OUT running bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT
        (SELECT count(*) FROM nightcrew.jobs
         WHERE status IN ('pending', 'retrying')
           AND (current_setting('nightcrew.is_admin', true) = 'true'
                OR user_id = current_setting('nightcrew.user_id', true))),
        (SELECT count(*) FROM nightcrew.jobs
         WHERE status = 'processing'
           AND (current_setting('nightcrew.is_admin', true) = 'true'
                OR user_id = current_setting('nightcrew.user_id', true)))
$$;

-- ---- row-level security ----------------------------------------------------------------------
-- The acting user comes from transaction-local settings; unset means no rows at all.

ALTER TABLE nightcrew.jobs ENABLE ROW LEVEL SECURITY;
CREATE POLICY jobs_owner ON nightcrew.jobs TO nightcrew_api
    USING (current_setting('nightcrew.is_admin', true) = 'true'
           OR user_id = current_setting('nightcrew.user_id', true))
    WITH CHECK (current_setting('nightcrew.is_admin', true) = 'true'
                OR user_id = current_setting('nightcrew.user_id', true));

ALTER TABLE nightcrew.stats_minute ENABLE ROW LEVEL SECURITY;
CREATE POLICY stats_owner ON nightcrew.stats_minute FOR SELECT TO nightcrew_api
    USING (current_setting('nightcrew.is_admin', true) = 'true'
           OR user_id = current_setting('nightcrew.user_id', true));

ALTER TABLE nightcrew.stats_hour ENABLE ROW LEVEL SECURITY;
CREATE POLICY stats_hour_owner ON nightcrew.stats_hour FOR SELECT TO nightcrew_api
    USING (current_setting('nightcrew.is_admin', true) = 'true'
           OR user_id = current_setting('nightcrew.user_id', true));

ALTER TABLE nightcrew.audit_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY audit_owner ON nightcrew.audit_log TO nightcrew_api
    USING (current_setting('nightcrew.is_admin', true) = 'true'
           OR actor = current_setting('nightcrew.user_id', true))
    WITH CHECK (actor = current_setting('nightcrew.user_id', true));

ALTER TABLE nightcrew.api_keys ENABLE ROW LEVEL SECURITY;  -- no policy: the role sees none

GRANT USAGE ON SCHEMA nightcrew TO nightcrew_api;
GRANT SELECT, INSERT, UPDATE ON nightcrew.jobs TO nightcrew_api;
GRANT SELECT ON nightcrew.stats_minute, nightcrew.stats_hour TO nightcrew_api;
GRANT SELECT, INSERT ON nightcrew.audit_log TO nightcrew_api;
GRANT SELECT ON nightcrew.migrations TO nightcrew_api;
