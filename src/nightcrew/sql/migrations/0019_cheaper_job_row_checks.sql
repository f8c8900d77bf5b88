-- nightcrew 0019: the job row's checks and the 'queued' enqueue, cheaper per statement.
-- Issue 14's last target: a trigger's nightcrew.enqueue() at most 1.5x the bare INSERT of
-- the triggering row (docs/benchmarks.md).
--
-- Part 1, the nine CHECK constraints of jobs become one, calling nightcrew.job_row_valid().
-- PostgreSQL keeps a CHECK as a stored node tree and, for every INSERT or UPDATE statement,
-- reads it back from text and plans it again (ExecRelCheck): the nine trees were about
-- 5,000 characters, a third of the instructions of a trigger's enqueue (callgrind:
-- ~170,000 of ~580,000 a statement). A call of one PL/pgSQL function whose body is planned
-- once per session is a tree of ~1,300 characters; its cost moves to each row (about
-- 3,000 instructions more a row than the inline checks), which is cheaper for every
-- statement that writes fewer than ~35 rows (every enqueue, fetch, save, heartbeat and
-- most completion batches) and dearer for bulk COPY (docs/benchmarks.md has both).
--
-- Every rule is kept, with the same meaning, because the API role (nightcrew_api, the
-- HTTP layer and RLS users) may INSERT and UPDATE its own rows directly:
--   type and queue not empty; attempts >= 0; max_attempts >= 1; pending_parents >= 0;
--   timeout_seconds > 0; progress between 0 and 100; dedupe_scope 'active' or 'queued';
--   on_parent_failure 'cancel' or 'run'.
-- A NULL passes, as it passed each CHECK (an AND is false only when one part is false).
--
-- The function is IMMUTABLE (a pure test of its arguments) and runs with the writer's
-- search_path, so its operators and types are named in pg_catalog: a writer's own
-- operators cannot stand in for them. (SET search_path would cost more than the rest of
-- the call.)
--
-- Part 2, nightcrew.enqueue() with a 'queued' key runs one statement for a new key: the
-- look-up of a waiting job of the key is part of the INSERT (NOT EXISTS) instead of a
-- SELECT before it; only when nothing was inserted does it look the waiting job up to
-- return it. Same arguments, checks, messages, privileges and race-freedom (the partial
-- unique index jobs_dedupe_queued_idx).

CREATE FUNCTION nightcrew.job_row_valid(
    type text, queue text, attempts integer, max_attempts integer, pending_parents integer,
    timeout_seconds double precision, progress real, dedupe_scope text,
    on_parent_failure text
) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    RETURN type OPERATOR(pg_catalog.<>) ''
       AND queue OPERATOR(pg_catalog.<>) ''
       AND attempts OPERATOR(pg_catalog.>=) 0
       AND max_attempts OPERATOR(pg_catalog.>=) 1
       AND pending_parents OPERATOR(pg_catalog.>=) 0
       AND timeout_seconds OPERATOR(pg_catalog.>) 0::pg_catalog.float8
       AND progress OPERATOR(pg_catalog.>=) 0::pg_catalog.float4
       AND progress OPERATOR(pg_catalog.<=) 100::pg_catalog.float4
       AND dedupe_scope OPERATOR(pg_catalog.=) ANY ('{active,queued}'::pg_catalog.text[])
       AND on_parent_failure OPERATOR(pg_catalog.=) ANY ('{cancel,run}'::pg_catalog.text[]);
END
$$;

-- Every writer of jobs evaluates it, the API role included.
GRANT EXECUTE ON FUNCTION nightcrew.job_row_valid(text, text, integer, integer, integer,
    double precision, real, text, text) TO PUBLIC;

ALTER TABLE nightcrew.jobs
    DROP CONSTRAINT jobs_type_check,
    DROP CONSTRAINT jobs_queue_check,
    DROP CONSTRAINT jobs_attempts_check,
    DROP CONSTRAINT jobs_max_attempts_check,
    DROP CONSTRAINT jobs_pending_parents_check,
    DROP CONSTRAINT jobs_timeout_seconds_check,
    DROP CONSTRAINT jobs_progress_check,
    DROP CONSTRAINT jobs_dedupe_scope_check,
    DROP CONSTRAINT jobs_on_parent_failure_check,
    ADD CONSTRAINT jobs_row_check CHECK (nightcrew.job_row_valid(
        type, queue, attempts, max_attempts, pending_parents, timeout_seconds, progress,
        dedupe_scope, on_parent_failure));

CREATE OR REPLACE FUNCTION nightcrew.enqueue(
    type         text,
    payload      jsonb DEFAULT '{}',
    priority     integer DEFAULT NULL,
    run_at       timestamptz DEFAULT NULL,
    dedupe_key   text DEFAULT NULL,
    user_id      text DEFAULT NULL,
    queue        text DEFAULT NULL,
    max_attempts integer DEFAULT NULL,
    depends_on   uuid[] DEFAULT NULL,
    dedupe_scope text DEFAULT NULL,
    on_parent_failure text DEFAULT NULL
) RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    scope  text := coalesce(enqueue.dedupe_scope, 'active');
    owner  text := enqueue.user_id;
    key    text := enqueue.dedupe_key;
    api    boolean := current_setting('role') = 'nightcrew_api';
    new_id uuid;
    job    record;
    spec   nightcrew.job_types%ROWTYPE;
    text_  text;
    woken  boolean;
    found_ boolean;
    waiting uuid;
BEGIN
    IF enqueue.on_parent_failure IS NOT NULL AND cardinality(enqueue.depends_on) IS NULL THEN
        RAISE EXCEPTION 'on_parent_failure needs depends_on' USING ERRCODE = 'invalid_parameter_value';
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
    -- (Whether the type is public is checked with the type, below.)
    IF api THEN
        owner := nullif(current_setting('nightcrew.user_id', true), '');
        IF owner IS NULL THEN
            RAISE EXCEPTION 'nightcrew.enqueue as nightcrew_api needs the request''s user '
                            '(nightcrew.user_id is not set)'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        key := owner || ':' || key;
    END IF;

    -- The job, with its type's defaults; no row when the type is unknown or (under the API
    -- role) not public, or when an existing job holds the key.
    new_id := nightcrew.uuid7();
    IF key IS NULL THEN
        INSERT INTO nightcrew.jobs AS j (
            id, type, queue, payload, priority, run_at, max_attempts, timeout_seconds,
            user_id, notify)
        SELECT new_id, t.type, coalesce(enqueue.queue, t.queue),
               coalesce(enqueue.payload, '{}'), coalesce(enqueue.priority, t.priority),
               coalesce(enqueue.run_at, now()), coalesce(enqueue.max_attempts, t.max_attempts),
               t.timeout_seconds, owner, t.notify
        FROM nightcrew.job_types AS t
        WHERE t.type = enqueue.type COLLATE "default" AND (t.public OR NOT api)
        RETURNING j.id, j.queue, j.run_at INTO job;
    ELSIF scope = 'active' THEN
        INSERT INTO nightcrew.jobs AS j (
            id, type, queue, payload, priority, run_at, max_attempts, timeout_seconds,
            dedupe_key, dedupe_scope, user_id, notify)
        SELECT new_id, t.type, coalesce(enqueue.queue, t.queue),
               coalesce(enqueue.payload, '{}'), coalesce(enqueue.priority, t.priority),
               coalesce(enqueue.run_at, now()), coalesce(enqueue.max_attempts, t.max_attempts),
               t.timeout_seconds, key, 'active', owner, t.notify
        FROM nightcrew.job_types AS t
        WHERE t.type = enqueue.type COLLATE "default" AND (t.public OR NOT api)
        ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL AND dedupe_scope = 'active'
            AND status IN ('pending', 'processing', 'retrying')
        DO NOTHING
        RETURNING j.id, j.queue, j.run_at INTO job;
    ELSE
        INSERT INTO nightcrew.jobs AS j (
            id, type, queue, payload, priority, run_at, max_attempts, timeout_seconds,
            dedupe_key, dedupe_scope, user_id, notify)
        SELECT new_id, t.type, coalesce(enqueue.queue, t.queue),
               coalesce(enqueue.payload, '{}'), coalesce(enqueue.priority, t.priority),
               coalesce(enqueue.run_at, now()), coalesce(enqueue.max_attempts, t.max_attempts),
               t.timeout_seconds, key, 'queued', owner, t.notify
        FROM nightcrew.job_types AS t
        WHERE t.type = enqueue.type COLLATE "default" AND (t.public OR NOT api)
          -- A job of the key waiting to run (never started, or retrying) absorbs this
          -- one: then nothing is inserted and the look-up below returns it.
          AND NOT EXISTS (
              SELECT FROM nightcrew.jobs AS w
              WHERE w.dedupe_key = key COLLATE "default" AND w.dedupe_scope = 'queued'
                AND w.status IN ('pending', 'retrying'))
        ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL AND dedupe_scope = 'queued'
            AND status = 'pending' AND started_at IS NULL
        DO NOTHING
        RETURNING j.id, j.queue, j.run_at INTO job;
    END IF;
    found_ := FOUND;

    IF NOT found_ AND key IS NOT NULL AND scope = 'queued' THEN
        -- The waiting job of the key that kept the INSERT from inserting, if any (the
        -- oldest, as before 0019); the type is checked as for a new job.
        SELECT j.id INTO waiting FROM nightcrew.jobs AS j
        WHERE j.dedupe_key = key COLLATE "default" AND j.dedupe_scope = 'queued'
          AND j.status IN ('pending', 'retrying')
        ORDER BY j.id LIMIT 1;
        IF FOUND THEN
            spec := nightcrew.enqueue_type(enqueue.type, api);
            PERFORM nightcrew.refuse_self_dependency(waiting, enqueue.depends_on);
            RETURN waiting;
        END IF;
    END IF;

    IF NOT found_ THEN
        -- Raises for an unknown or (under the API role) private type. Otherwise a job
        -- holds the key: 0014's statement returns it, waiting for a transaction that holds
        -- the key uncommitted, or inserts after all if the job has left the index's states.
        -- (Without a key: the type was recorded meanwhile by a transaction the INSERT's
        -- snapshot did not see.)
        spec := nightcrew.enqueue_type(enqueue.type, api);
        IF key IS NULL THEN
            INSERT INTO nightcrew.jobs AS j (
                id, type, queue, payload, priority, run_at, max_attempts, timeout_seconds,
                user_id, notify)
            VALUES (
                new_id, enqueue.type, coalesce(enqueue.queue, spec.queue),
                coalesce(enqueue.payload, '{}'), coalesce(enqueue.priority, spec.priority),
                coalesce(enqueue.run_at, now()),
                coalesce(enqueue.max_attempts, spec.max_attempts),
                spec.timeout_seconds, owner, spec.notify)
            RETURNING j.id, j.queue, j.run_at, true AS inserted INTO job;
        ELSIF scope = 'active' THEN
            INSERT INTO nightcrew.jobs AS j (
                id, type, queue, payload, priority, run_at, max_attempts, timeout_seconds,
                dedupe_key, dedupe_scope, user_id, notify)
            VALUES (
                new_id, enqueue.type, coalesce(enqueue.queue, spec.queue),
                coalesce(enqueue.payload, '{}'), coalesce(enqueue.priority, spec.priority),
                coalesce(enqueue.run_at, now()),
                coalesce(enqueue.max_attempts, spec.max_attempts),
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
                coalesce(enqueue.run_at, now()),
                coalesce(enqueue.max_attempts, spec.max_attempts),
                spec.timeout_seconds, key, 'queued', owner, spec.notify)
            ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL AND dedupe_scope = 'queued'
                AND status = 'pending' AND started_at IS NULL
            DO UPDATE SET dedupe_key = EXCLUDED.dedupe_key
            RETURNING j.id, j.queue, j.run_at, (j.xmax = 0) AS inserted INTO job;
        END IF;
        IF NOT job.inserted THEN
            -- A dedupe hit returns the existing job as it is.
            PERFORM nightcrew.refuse_self_dependency(job.id, enqueue.depends_on);
            RETURN job.id;
        END IF;
    END IF;

    -- A new job waits for its parents (the fan-in trigger wakes a worker once they end).
    -- Two IFs: in one condition a NULL depends_on (cardinality NULL) would not stop the
    -- AND, and link_parents ran for every job.
    IF cardinality(enqueue.depends_on) > 0 THEN
        IF nightcrew.link_parents(job.id, enqueue.depends_on, enqueue.on_parent_failure) > 0
        THEN
            RETURN job.id;
        END IF;
    END IF;

    -- The same wake-up as the Python enqueue; delivered when the caller commits. An
    -- assignment, not PERFORM: a simple expression, evaluated without starting an executor.
    IF job.run_at <= now() THEN
        woken := pg_notify('nightcrew_jobs', job.queue) IS NULL;
    END IF;
    RETURN job.id;
END
$$;
