-- nightcrew 0012: job dependencies (fan-out and fan-in), decided in the database.
--
-- * jobs.depends_on: the parents of a dependent (NULL for every other job);
--   jobs.pending_parents: how many of them have not ended yet. A job waits while it is
--   'pending' with pending_parents > 0: the fetch index leaves it out, so fetching costs
--   nothing more for anyone.
-- * jobs.on_parent_failure: 'cancel' (a parent ending failed or cancelled cancels the
--   dependent) or 'run' (it runs once every parent has ended, whatever the outcome).
-- * jobs.has_dependents: set on a parent when a dependent is linked to it; the fan-in
--   trigger looks no further for a statement none of whose rows has it.
-- * job_dependencies: one edge per (parent, dependent); "resolved" once the parent has ended
--   and the dependent was told, so a parent that ends again (retried by hand after failing)
--   never counts twice.
--
-- Race-freedom: nightcrew.link_parents locks the parent rows before reading their status,
-- and a parent's status change holds the same row lock while its trigger resolves the
-- edges. Either the link waits for the change (and sees the parent ended), or the change
-- waits for the link's commit (and its trigger, reading with a new snapshot, sees the edge).
-- The dependent's counter is decremented under its row lock, so of two parents ending at
-- the same moment exactly one brings it to zero.

ALTER TABLE nightcrew.jobs
    ADD COLUMN depends_on uuid[],
    ADD COLUMN pending_parents integer NOT NULL DEFAULT 0
        CONSTRAINT jobs_pending_parents_check CHECK (pending_parents >= 0),
    ADD COLUMN on_parent_failure text
        CONSTRAINT jobs_on_parent_failure_check CHECK (on_parent_failure IN ('cancel', 'run')),
    ADD COLUMN has_dependents boolean NOT NULL DEFAULT false;

CREATE TABLE nightcrew.job_dependencies (
    parent_id uuid NOT NULL,
    job_id    uuid NOT NULL,
    resolved  boolean NOT NULL DEFAULT false,
    PRIMARY KEY (parent_id, job_id)
);

-- Waiting dependents are not runnable: out of the fetch index (and of the backlog counts
-- that read it).
DROP INDEX nightcrew.jobs_fetch_idx;
CREATE INDEX jobs_fetch_idx ON nightcrew.jobs (queue, priority DESC, run_at)
    WHERE status IN ('pending', 'retrying') AND pending_parents = 0;

CREATE OR REPLACE FUNCTION nightcrew.stats_backlog(OUT queue_depth bigint, OUT running bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT
        (SELECT count(*) FROM nightcrew.jobs
         WHERE status IN ('pending', 'retrying') AND pending_parents = 0
           AND (current_setting('nightcrew.is_admin', true) = 'true'
                OR user_id = current_setting('nightcrew.user_id', true))),
        (SELECT count(*) FROM nightcrew.jobs
         WHERE status = 'processing'
           AND (current_setting('nightcrew.is_admin', true) = 'true'
                OR user_id = current_setting('nightcrew.user_id', true)))
$$;

-- Link a just-inserted job to its parents: lock them (in id order, so two links of the same
-- parents cannot deadlock), record the edges, and count the parents still unfinished. A
-- parent that already ended counts as ended (one archived by pruning too); in 'cancel' mode
-- one that ended failed or cancelled cancels the new job at once. Raises for a parent that
-- is unknown or that the caller may not see (foreign_key_violation: under the API role only
-- the request's user's jobs, as the jobs policy says; the function itself runs as the owner)
-- and for a job depending on itself. Returns the number of unfinished parents.
CREATE FUNCTION nightcrew.link_parents(child uuid, parents uuid[],
                                       on_parent_failure text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    mode     text := coalesce(link_parents.on_parent_failure, 'cancel');
    everyone boolean := current_setting('role') <> 'nightcrew_api'
                        OR current_setting('nightcrew.is_admin', true) = 'true';
    viewer   text := current_setting('nightcrew.user_id', true);
    wanted   uuid[];
    found    uuid[];
    types    text[];
    statuses text[];
    missing  uuid[];
    waiting  integer;
    failed   integer;
BEGIN
    IF mode NOT IN ('cancel', 'run') THEN
        RAISE EXCEPTION 'on_parent_failure must be ''cancel'' or ''run'', got "%"', mode
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF array_position(parents, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'depends_on: a parent id is NULL' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT array_agg(DISTINCT p ORDER BY p) INTO wanted FROM unnest(parents) AS p;
    IF wanted IS NULL THEN
        RETURN 0;
    END IF;
    IF child = ANY (wanted) THEN
        RAISE EXCEPTION 'depends_on: job % cannot depend on itself', child
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- The lock that orders this link with the parents' status changes (see the top).
    PERFORM 1 FROM nightcrew.jobs AS p
    WHERE p.id = ANY (wanted) AND (everyone OR p.user_id = viewer)
    ORDER BY p.id FOR NO KEY UPDATE;
    UPDATE nightcrew.jobs AS p SET has_dependents = true
    WHERE p.id = ANY (wanted) AND (everyone OR p.user_id = viewer) AND NOT p.has_dependents;

    -- A new statement, a new snapshot: the statuses as the locks left them.
    SELECT array_agg(f.id ORDER BY f.id), array_agg(f.type ORDER BY f.id),
           array_agg(f.status ORDER BY f.id)
    INTO found, types, statuses
    FROM (SELECT p.id, p.type, p.status::text AS status FROM nightcrew.jobs AS p
          WHERE p.id = ANY (wanted) AND (everyone OR p.user_id = viewer)
          UNION ALL
          SELECT h.id, h.type, h.status::text FROM nightcrew.jobs_history AS h
          WHERE h.id = ANY (wanted) AND (everyone OR h.job ->> 'user_id' = viewer)
            AND NOT EXISTS (SELECT FROM nightcrew.jobs AS j WHERE j.id = h.id)) AS f;

    SELECT array_agg(w ORDER BY w) INTO missing
    FROM unnest(wanted) AS w WHERE NOT (w = ANY (coalesce(found, '{}')));
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'depends_on: no job %', array_to_string(missing, ', ')
            USING ERRCODE = 'foreign_key_violation';
    END IF;

    INSERT INTO nightcrew.job_dependencies (parent_id, job_id, resolved)
    SELECT f.id, child, f.status IN ('completed', 'failed', 'cancelled')
    FROM unnest(found, statuses) AS f(id, status);

    SELECT count(*) FILTER (WHERE s NOT IN ('completed', 'failed', 'cancelled'))
    INTO waiting FROM unnest(statuses) AS s;
    SELECT min(i) INTO failed FROM generate_subscripts(statuses, 1) AS i
    WHERE statuses[i] IN ('failed', 'cancelled');

    IF mode = 'cancel' AND failed IS NOT NULL THEN
        UPDATE nightcrew.jobs AS j
        SET depends_on = wanted, on_parent_failure = mode, pending_parents = waiting,
            status = 'cancelled',
            error = format('parent job %s (%s) ended %s', found[failed], types[failed],
                           statuses[failed]),
            completed_at = now(), updated_at = now()
        WHERE j.id = child AND j.status = 'pending';
    ELSE
        UPDATE nightcrew.jobs AS j
        SET depends_on = wanted, on_parent_failure = mode, pending_parents = waiting
        WHERE j.id = child;
    END IF;
    RETURN waiting;
END
$$;

-- Fan-in: parents ended. Once per statement (a batch of completions decrements a shared
-- dependent once, by the batch's count, instead of once per child: a fan-in of 10,000
-- would otherwise rewrite its dependent 10,000 times). Resolve the parents' edges once,
-- then decrement each dependent under its row lock (id order: two batches cannot lock the
-- same dependents crosswise). A dependent that reaches zero is runnable: its queue's
-- workers are woken at commit. In 'cancel' mode a waiting dependent of a failed or
-- cancelled parent is cancelled, naming the parent; that update fires this trigger again
-- for its own dependents, down the graph.
CREATE FUNCTION nightcrew.jobs_resolve_dependents() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    parents   uuid[];
    types     text[];
    statuses  text[];
    deps      uuid[];
    counts    integer[];
    failed    integer[];
    woken     integer;
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
    WITH ended AS (
        UPDATE nightcrew.job_dependencies AS e SET resolved = true
        WHERE e.parent_id = ANY (parents) AND NOT e.resolved
        RETURNING e.job_id, array_position(parents, e.parent_id) AS k
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

CREATE TRIGGER jobs_resolve_dependents
    AFTER UPDATE ON nightcrew.jobs
    REFERENCING NEW TABLE AS resolve_new
    FOR EACH STATEMENT EXECUTE FUNCTION nightcrew.jobs_resolve_dependents();

-- The dashboard lists a job's dependents through the edges. Under the API role an edge is
-- visible only when its dependent is (the jobs policy decides, inside this one too).
ALTER TABLE nightcrew.job_dependencies ENABLE ROW LEVEL SECURITY;
CREATE POLICY job_dependencies_visible ON nightcrew.job_dependencies FOR SELECT TO nightcrew_api
    USING (EXISTS (SELECT FROM nightcrew.jobs AS j WHERE j.id = job_id));
GRANT SELECT ON nightcrew.job_dependencies TO nightcrew_api;

REVOKE ALL ON FUNCTION nightcrew.link_parents(uuid, uuid[], text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION nightcrew.link_parents(uuid, uuid[], text) TO nightcrew_api;

-- A dedupe hit returns an existing job; asking that job to depend on itself is refused.
CREATE FUNCTION nightcrew.refuse_self_dependency(job uuid, parents uuid[]) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF job = ANY (parents) THEN
        RAISE EXCEPTION 'depends_on: job % cannot depend on itself', job
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;

-- nightcrew.enqueue() with dependencies: depends_on works (it raised until now) and
-- on_parent_failure is a new, last argument.
DROP FUNCTION nightcrew.enqueue(text, jsonb, integer, timestamptz, text, text, text, integer,
                                uuid[], text);
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
    dedupe_scope text DEFAULT NULL,
    on_parent_failure text DEFAULT NULL
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
            PERFORM nightcrew.refuse_self_dependency(new_id, enqueue.depends_on);
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

    -- A dedupe hit returns the existing job as it is; a new job waits for its parents.
    IF NOT job.inserted THEN
        PERFORM nightcrew.refuse_self_dependency(job.id, enqueue.depends_on);
    ELSIF cardinality(enqueue.depends_on) > 0
          AND nightcrew.link_parents(job.id, enqueue.depends_on, enqueue.on_parent_failure) > 0
    THEN
        RETURN job.id;  -- runnable once its parents end: the fan-in trigger wakes a worker
    END IF;

    -- The same wake-up as the Python enqueue; delivered when the caller commits.
    IF job.inserted AND job.run_at <= now() THEN
        PERFORM pg_notify('nightcrew_jobs', job.queue);
    END IF;
    RETURN job.id;
END
$$;

REVOKE ALL ON FUNCTION nightcrew.enqueue(text, jsonb, integer, timestamptz, text, text, text,
                                         integer, uuid[], text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION nightcrew.enqueue(text, jsonb, integer, timestamptz, text, text,
                                            text, integer, uuid[], text, text) TO nightcrew_api;
