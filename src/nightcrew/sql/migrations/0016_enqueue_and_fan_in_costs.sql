-- nightcrew 0016: the costs of issue 14's flows (docs/benchmarks.md), same rules.
--
-- Part 1, the fan-in (jobs_resolve_dependents, 0014): a batch of 500 completions of one
-- fan-out spent 12-16 ms in the trigger. Now:
-- * the failed parent's position is looked up only when a parent of the statement failed
--   or was cancelled;
-- * job_dependencies leaves room in its pages (fillfactor 50), so marking an edge resolved
--   is a HOT update: no new primary-key entry per edge.
--
-- Part 2, nightcrew.enqueue() runs fewer statements per call (same arguments, same rules).
-- Issue 14's target: a trigger's enqueue costs at most 1.5x the bare INSERT of the
-- triggering row; with a dedupe key it cost 1.6-1.8x.
--
-- * The type's defaults are read inside the job's INSERT (INSERT ... SELECT FROM
--   job_types): one statement instead of a look-up and then the insert. When it inserts
--   nothing, a second look-up tells why (an unknown type, a type that is not public under
--   the API role, or a dedupe hit) -- only then.
-- * link_parents is called only for a job with parents (0014 called it for every job: a
--   NULL depends_on made its condition NULL, which does not stop an AND), and the wake-up
--   is a simple expression (PERFORM starts an executor).
-- * Comparisons with the arguments name the columns' collation: PL/pgSQL gives every text
--   argument and variable the collation of the call's arguments, so a key built from a
--   `name` (TG_TABLE_NAME, collation "C") made the 'queued' look-up filter every waiting
--   keyed job instead of using jobs_dedupe_waiting_idx (measured: 9 ms a call at 5,000).
-- * A keyed insert tries ON CONFLICT DO NOTHING first: a new key (the common case) skips
--   the DO UPDATE arm, whose set-up (a projection of every column of jobs) each execution
--   paid. On a conflict it runs 0014's ON CONFLICT DO UPDATE, which returns the live job
--   of the key (or inserts, if that job has meanwhile left the index's states): race-free
--   through the same partial unique indexes, whatever the isolation level.
--
-- Kept: the arguments, the checks and their messages, SECURITY DEFINER with a fixed
-- search_path, the API role's owner and key scoping, depends_on through link_parents, the
-- wake-up NOTIFY at commit (not for a dependent still waiting), the privileges.

CREATE OR REPLACE FUNCTION nightcrew.jobs_resolve_dependents() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    parents   uuid[];
    types     text[];
    statuses  text[];
    deps      uuid[];
    counts    integer[];
    failed    integer[];
    woken     integer;
    failures  boolean;
BEGIN
    -- The exit every statement that ends no parent takes: a scan of its own rows (a
    -- trigger's WHEN clause cannot look at transition tables).
    SELECT array_agg(n.id ORDER BY n.id), array_agg(n.type ORDER BY n.id),
           array_agg(n.status::text ORDER BY n.id)
    INTO parents, types, statuses
    FROM resolve_new AS n
    WHERE n.has_dependents AND n.status IN ('completed', 'failed', 'cancelled');
    IF parents IS NULL THEN
        RETURN NULL;
    END IF;

    -- Each edge once: a parent ending again (retried by hand) finds its edges resolved.
    -- Which parent failed is looked up only when one did: array_position per edge is a
    -- scan of the statement's parents (quadratic: 4 ms for a batch of 500 completions).
    failures := 'failed' = ANY (statuses) OR 'cancelled' = ANY (statuses);
    WITH ended AS (
        UPDATE nightcrew.job_dependencies AS e SET resolved = true
        WHERE e.parent_id = ANY (parents) AND NOT e.resolved
        RETURNING e.job_id,
                  CASE WHEN failures THEN array_position(parents, e.parent_id) END AS k
    ), per_job AS (
        SELECT job_id, count(*)::int AS n,
               min(k) FILTER (WHERE statuses[k] <> 'completed') AS failed_k
        FROM ended GROUP BY job_id
    )
    SELECT array_agg(job_id ORDER BY job_id), array_agg(n ORDER BY job_id),
           array_agg(failed_k ORDER BY job_id)
    INTO deps, counts, failed
    FROM per_job;
    IF deps IS NULL THEN
        RETURN NULL;
    END IF;

    PERFORM 1 FROM nightcrew.jobs AS d WHERE d.id = ANY (deps) ORDER BY d.id FOR NO KEY UPDATE;
    WITH changed AS (
        UPDATE nightcrew.jobs AS d
        SET pending_parents = greatest(d.pending_parents - p.n, 0),
            status = CASE WHEN p.cancel THEN 'cancelled'::nightcrew.job_status ELSE d.status END,
            error = CASE WHEN p.cancel
                         THEN format('parent job %s (%s) ended %s', parents[p.failed_k],
                                     types[p.failed_k], statuses[p.failed_k])
                         ELSE d.error END,
            completed_at = CASE WHEN p.cancel THEN now() ELSE d.completed_at END,
            updated_at = now()
        FROM (SELECT u.id, u.n, u.failed_k,
                     u.failed_k IS NOT NULL AND j.on_parent_failure = 'cancel'
                         AND j.status = 'pending' AND j.pending_parents > 0 AS cancel
              FROM unnest(deps, counts, failed) AS u(id, n, failed_k)
              JOIN nightcrew.jobs AS j ON j.id = u.id) AS p
        WHERE d.id = p.id
        RETURNING d.queue, d.status, d.pending_parents
    )
    SELECT count(pg_notify('nightcrew_jobs', q.queue)) INTO woken
    FROM (SELECT DISTINCT queue FROM changed
          WHERE status = 'pending' AND pending_parents = 0) AS q;
    RETURN NULL;
END
$$;

ALTER TABLE nightcrew.job_dependencies SET (fillfactor = 50);

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

    IF key IS NOT NULL AND scope = 'queued' THEN
        -- A job of the key waiting to run (never started, or retrying) absorbs this one.
        SELECT j.id INTO new_id FROM nightcrew.jobs AS j
        WHERE j.dedupe_key = key COLLATE "default" AND j.dedupe_scope = 'queued'
          AND j.status IN ('pending', 'retrying')
        ORDER BY j.id LIMIT 1;
        IF FOUND THEN
            spec := nightcrew.enqueue_type(enqueue.type, api);
            PERFORM nightcrew.refuse_self_dependency(new_id, enqueue.depends_on);
            RETURN new_id;
        END IF;
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
        ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL AND dedupe_scope = 'queued'
            AND status = 'pending' AND started_at IS NULL
        DO NOTHING
        RETURNING j.id, j.queue, j.run_at INTO job;
    END IF;

    IF NOT FOUND THEN
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

-- The type's row for nightcrew.enqueue(), raising when no App has recorded it or, under the
-- API role (api), when it is not public. Only on enqueue's rare paths.
CREATE FUNCTION nightcrew.enqueue_type(type text, api boolean)
RETURNS nightcrew.job_types
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    spec nightcrew.job_types%ROWTYPE;
BEGIN
    SELECT * INTO spec FROM nightcrew.job_types AS t WHERE t.type = enqueue_type.type COLLATE "default";
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown job type "%": register it with @app.job and start the App '
                        '(or run nightcrew migrate) so it is recorded', enqueue_type.type
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF api AND NOT spec.public THEN
        RAISE EXCEPTION 'job type "%" is not public', enqueue_type.type
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN spec;
END
$$;

REVOKE ALL ON FUNCTION nightcrew.enqueue_type(text, boolean) FROM PUBLIC;
