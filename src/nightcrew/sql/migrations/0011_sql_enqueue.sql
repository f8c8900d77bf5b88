-- nightcrew 0011: enqueue from SQL (triggers, functions, plain SQL) and coalescing dedupe.
--
-- * job_types: the job types Apps have registered, with their defaults; every App upserts
--   its registry when it starts (App.sync_job_types), so SQL can refuse unknown types and
--   apply the same defaults as the Python API.
-- * jobs.dedupe_scope: 'active' (as before: one live job per key) or 'queued' (coalescing:
--   one job per key waiting to run; once it has started, one more may queue behind it).
--   Each scope has its own partial unique index, which its enqueue's ON CONFLICT targets.
-- * nightcrew.enqueue(...): the SQL twin of App.enqueue, inside the caller's transaction.

CREATE TABLE nightcrew.job_types (
    type            text PRIMARY KEY CHECK (type <> ''),
    queue           text NOT NULL CHECK (queue <> ''),
    priority        integer NOT NULL DEFAULT 0,
    max_attempts    integer NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    timeout_seconds double precision CHECK (timeout_seconds > 0),
    public          boolean NOT NULL DEFAULT true,
    notify          jsonb,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- A constant default: no table rewrite.
ALTER TABLE nightcrew.jobs ADD COLUMN dedupe_scope text NOT NULL DEFAULT 'active'
    CONSTRAINT jobs_dedupe_scope_check CHECK (dedupe_scope IN ('active', 'queued'));

-- 'active': at most one pending, processing or retrying job per key (0001's rule, now
-- limited to its scope).
DROP INDEX nightcrew.jobs_dedupe_idx;
CREATE UNIQUE INDEX jobs_dedupe_idx ON nightcrew.jobs (dedupe_key)
    WHERE dedupe_key IS NOT NULL AND dedupe_scope = 'active'
      AND status IN ('pending', 'processing', 'retrying');

-- 'queued': at most one job per key that has never started. A job that ran and goes back
-- to waiting (retry after an error, shutdown, rescue) keeps started_at, so it never
-- collides with the follow-up queued behind it while it ran.
CREATE UNIQUE INDEX jobs_dedupe_queued_idx ON nightcrew.jobs (dedupe_key)
    WHERE dedupe_key IS NOT NULL AND dedupe_scope = 'queued'
      AND status = 'pending' AND started_at IS NULL;

-- 'queued': finds a waiting job of the key (including one retrying) before inserting.
CREATE INDEX jobs_dedupe_waiting_idx ON nightcrew.jobs (dedupe_key)
    WHERE dedupe_key IS NOT NULL AND dedupe_scope = 'queued'
      AND status IN ('pending', 'retrying');

-- The notification jobs keep the active scope: the trigger targets its index.
CREATE OR REPLACE FUNCTION nightcrew.jobs_notify_finished() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    queued integer;
BEGIN
    -- The cheap exit every batch of jobs without notify takes (a trigger's WHEN clause
    -- cannot look at transition tables).
    IF NOT EXISTS (SELECT 1 FROM notify_new WHERE notify IS NOT NULL) THEN
        RETURN NULL;
    END IF;
    WITH events AS (
        SELECT n.id, n.status::text AS status, n.attempts,
               'job:' || n.id || ':' || n.status::text || ':'
                   || (extract(epoch FROM coalesce(n.completed_at, n.updated_at)) * 1000000)
                      ::bigint AS event_key
        FROM notify_new AS n JOIN notify_old AS o ON o.id = n.id
        WHERE n.notify IS NOT NULL
          AND n.status IS DISTINCT FROM o.status
          AND n.status IN ('completed', 'failed', 'cancelled')
          AND jsonb_exists(coalesce(n.notify -> 'on', '["completed", "failed"]'::jsonb),
                           n.status::text)
    ), queued_jobs AS (
        INSERT INTO nightcrew.jobs (id, type, queue, payload, max_attempts, dedupe_key)
        SELECT nightcrew.uuid7(), 'nightcrew.notify', 'nightcrew',
               jsonb_build_object('kind', 'job', 'job_id', e.id, 'status', e.status,
                                  'attempts', e.attempts, 'event_key', e.event_key),
               8, 'notify:' || e.event_key
        FROM events AS e
        ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL AND dedupe_scope = 'active'
            AND status IN ('pending', 'processing', 'retrying')
        DO NOTHING
        RETURNING 1
    )
    SELECT count(*) INTO queued FROM queued_jobs;
    IF queued > 0 THEN
        PERFORM pg_notify('nightcrew_jobs', 'nightcrew');
    END IF;
    RETURN NULL;
END
$$;
CREATE FUNCTION nightcrew.enqueue(
    type         text,
    payload      jsonb DEFAULT '{}',
    priority     integer DEFAULT NULL,
    run_at       timestamptz DEFAULT NULL,
    dedupe_key   text DEFAULT NULL,
    user_id      text DEFAULT NULL,
    queue        text DEFAULT NULL,
    max_attempts integer DEFAULT NULL,
    depends_on   uuid[] DEFAULT NULL,
    dedupe_scope text DEFAULT NULL
) RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    spec   nightcrew.job_types%ROWTYPE;
    scope  text := coalesce(enqueue.dedupe_scope, 'active');
    owner  text := enqueue.user_id;
    key    text := enqueue.dedupe_key;
    new_id uuid;
    job    record;
    text_  text;
BEGIN
    SELECT * INTO spec FROM nightcrew.job_types AS t WHERE t.type = enqueue.type;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown job type "%": register it with @app.job and start the App '
                        '(or run nightcrew migrate) so it is recorded', enqueue.type
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cardinality(enqueue.depends_on) > 0 THEN
        RAISE EXCEPTION 'depends_on is not supported yet' USING ERRCODE = 'feature_not_supported';
    END IF;
    IF scope NOT IN ('active', 'queued') THEN
        RAISE EXCEPTION 'dedupe_scope must be ''active'' or ''queued'', got "%"', scope
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF enqueue.dedupe_scope IS NOT NULL AND key IS NULL THEN
        RAISE EXCEPTION 'dedupe_scope needs a dedupe_key' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF enqueue.priority NOT BETWEEN -1000 AND 1000 THEN
        RAISE EXCEPTION 'priority must be between -1000 and 1000, got %', enqueue.priority
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF enqueue.max_attempts NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'max_attempts must be between 1 and 1000, got %', enqueue.max_attempts
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- More than 64 nested arrays/objects, as the Python API refuses. Counting brackets in
    -- the text first keeps the common payload off the JSON path query; both are simple
    -- expressions, evaluated without starting an executor.
    text_ := enqueue.payload::text;
    IF length(text_) - length(translate(text_, '[{', '')) > 64
       AND jsonb_path_exists(enqueue.payload,
                             'strict $.**{64} ? (@.type() == "object" || @.type() == "array")')
    THEN
        RAISE EXCEPTION 'payload for "%" nests deeper than 64 arrays/objects', enqueue.type
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- Under the API role the job belongs to the request's user, whatever the argument says
    -- (the function runs as the owner, so row-level security would not check it), and its
    -- dedupe key is that user's, as in POST /api/jobs: no match with another user's job.
    IF current_setting('role') = 'nightcrew_api' THEN
        owner := nullif(current_setting('nightcrew.user_id', true), '');
        IF owner IS NULL THEN
            RAISE EXCEPTION 'nightcrew.enqueue as nightcrew_api needs the request''s user '
                            '(nightcrew.user_id is not set)'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF NOT spec.public THEN
            RAISE EXCEPTION 'job type "%" is not public', enqueue.type
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        key := owner || ':' || key;
    END IF;

    IF key IS NOT NULL AND scope = 'queued' THEN
        -- A job of the key waiting to run (never started, or retrying) absorbs this one.
        SELECT j.id INTO new_id FROM nightcrew.jobs AS j
        WHERE j.dedupe_key = key AND j.dedupe_scope = 'queued'
          AND j.status IN ('pending', 'retrying')
        ORDER BY j.id LIMIT 1;
        IF FOUND THEN
            RETURN new_id;
        END IF;
    END IF;

    new_id := nightcrew.uuid7();
    IF key IS NULL THEN
        INSERT INTO nightcrew.jobs AS j (
            id, type, queue, payload, priority, run_at, max_attempts, timeout_seconds,
            user_id, notify)
        VALUES (
            new_id, enqueue.type, coalesce(enqueue.queue, spec.queue),
            coalesce(enqueue.payload, '{}'), coalesce(enqueue.priority, spec.priority),
            coalesce(enqueue.run_at, now()), coalesce(enqueue.max_attempts, spec.max_attempts),
            spec.timeout_seconds, owner, spec.notify)
        RETURNING j.id, j.queue, j.run_at, true AS inserted INTO job;
    ELSIF scope = 'active' THEN
        INSERT INTO nightcrew.jobs AS j (
            id, type, queue, payload, priority, run_at, max_attempts, timeout_seconds,
            dedupe_key, dedupe_scope, user_id, notify)
        VALUES (
            new_id, enqueue.type, coalesce(enqueue.queue, spec.queue),
            coalesce(enqueue.payload, '{}'), coalesce(enqueue.priority, spec.priority),
            coalesce(enqueue.run_at, now()), coalesce(enqueue.max_attempts, spec.max_attempts),
            spec.timeout_seconds, key, 'active', owner, spec.notify)
        ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL AND dedupe_scope = 'active'
            AND status IN ('pending', 'processing', 'retrying')
        DO UPDATE SET dedupe_key = EXCLUDED.dedupe_key
        RETURNING j.id, j.queue, j.run_at, (j.xmax = 0) AS inserted INTO job;
    ELSE
        INSERT INTO nightcrew.jobs AS j (
            id, type, queue, payload, priority, run_at, max_attempts, timeout_seconds,
            dedupe_key, dedupe_scope, user_id, notify)
        VALUES (
            new_id, enqueue.type, coalesce(enqueue.queue, spec.queue),
            coalesce(enqueue.payload, '{}'), coalesce(enqueue.priority, spec.priority),
            coalesce(enqueue.run_at, now()), coalesce(enqueue.max_attempts, spec.max_attempts),
            spec.timeout_seconds, key, 'queued', owner, spec.notify)
        ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL AND dedupe_scope = 'queued'
            AND status = 'pending' AND started_at IS NULL
        DO UPDATE SET dedupe_key = EXCLUDED.dedupe_key
        RETURNING j.id, j.queue, j.run_at, (j.xmax = 0) AS inserted INTO job;
    END IF;

    -- The same wake-up as the Python enqueue; delivered when the caller commits.
    IF job.inserted AND job.run_at <= now() THEN
        PERFORM pg_notify('nightcrew_jobs', job.queue);
    END IF;
    RETURN job.id;
END
$$;

REVOKE ALL ON FUNCTION nightcrew.enqueue(text, jsonb, integer, timestamptz, text, text, text,
                                         integer, uuid[], text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION nightcrew.enqueue(text, jsonb, integer, timestamptz, text, text,
                                            text, integer, uuid[], text) TO nightcrew_api;
