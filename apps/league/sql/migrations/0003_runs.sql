-- Statistics refresh runs: what triggered them, their ten functions' outcomes, and the
-- invariants that coalesce triggers (at most one run waiting, at most one processing).

CREATE TABLE league.runs (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    status            text NOT NULL DEFAULT 'queued'
                      CHECK (status IN ('queued', 'processing', 'completed', 'failed')),
    triggered_by      text NOT NULL CHECK (triggered_by IN ('post-match', 'admin', 'cron')),
    request_id        text NOT NULL,
    match_id          integer REFERENCES league.matches (id),
    retry_of          uuid REFERENCES league.runs (id),
    refresh_job_id    uuid,
    functions_total   integer NOT NULL DEFAULT 0,
    failed_functions  text[] NOT NULL DEFAULT '{}',
    invalidated_tags  text[] NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz,
    completed_at      timestamptz
);
-- Coalescing: a trigger joins the one waiting run; a run starts only when none processes.
CREATE UNIQUE INDEX runs_one_queued ON league.runs ((status)) WHERE status = 'queued';
CREATE UNIQUE INDEX runs_one_processing ON league.runs ((status)) WHERE status = 'processing';
CREATE INDEX runs_recent ON league.runs (created_at DESC);

-- Every trigger a run answered (the first is also on the run itself); request ids are
-- unique, so a repeated request finds its run.
CREATE TABLE league.run_triggers (
    request_id    text PRIMARY KEY CHECK (request_id <> ''),
    run_id        uuid NOT NULL REFERENCES league.runs (id) ON DELETE CASCADE,
    triggered_by  text NOT NULL,
    match_id      integer,
    retry_of      uuid,
    received_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX run_triggers_run ON league.run_triggers (run_id);

-- One row per statistics function of a run: its job, attempts, outcome and duration.
CREATE TABLE league.run_functions (
    run_id       uuid NOT NULL REFERENCES league.runs (id) ON DELETE CASCADE,
    function     text NOT NULL,
    job_id       uuid,
    status       text NOT NULL DEFAULT 'queued'
                 CHECK (status IN ('queued', 'processing', 'succeeded', 'failed')),
    attempts     integer NOT NULL DEFAULT 0,
    started_at   timestamptz,
    ended_at     timestamptz,
    duration_ms  numeric(12, 1),
    rows_written integer,
    error        text,
    PRIMARY KEY (run_id, function)
);

-- Injectable faults (tests, drills, the demo). Transient: each of a function job's first
-- transient_attempts attempts fails with probability transient_rate (a transient fault
-- clears by then, as a lock timeout or a restart does). Permanent: every attempt fails.
CREATE TABLE league.faults (
    function            text PRIMARY KEY,
    transient_rate      double precision NOT NULL DEFAULT 0
                        CHECK (transient_rate BETWEEN 0 AND 1),
    transient_attempts  integer NOT NULL DEFAULT 1 CHECK (transient_attempts >= 0),
    permanent           boolean NOT NULL DEFAULT false
);

-- Signatures of accepted cache invalidation requests, to refuse a replay within the
-- five minutes a timestamp stays fresh.
CREATE TABLE league.invalidation_receipts (
    signature    text PRIMARY KEY,
    received_at  timestamptz NOT NULL DEFAULT now()
);

-- A trigger asks for a run, in the caller's transaction, in one round trip: the run its
-- request id already has (existing), else the waiting run joined with a share lock (it
-- can't start before the caller commits), else a new waiting run (created: the caller
-- enqueues its refresh job). Requests with one id are serialised by an advisory lock.
CREATE FUNCTION league.request_run(p_triggered_by text, p_request_id text, p_match_id integer,
                                   p_retry_of uuid)
RETURNS TABLE (id uuid, status text, created boolean, existing boolean)
LANGUAGE plpgsql AS $$
DECLARE
    run_id     uuid;
    run_status text;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('league.request:' || p_request_id));
    SELECT r.id, r.status INTO run_id, run_status
    FROM league.run_triggers t JOIN league.runs r ON r.id = t.run_id
    WHERE t.request_id = p_request_id;
    IF FOUND THEN
        RETURN QUERY SELECT run_id, run_status, false, true;
        RETURN;
    END IF;
    LOOP
        INSERT INTO league.runs (triggered_by, request_id, match_id, retry_of)
        VALUES (p_triggered_by, p_request_id, p_match_id, p_retry_of)
        ON CONFLICT ((league.runs.status)) WHERE league.runs.status = 'queued' DO NOTHING
        RETURNING league.runs.id, league.runs.status INTO run_id, run_status;
        EXIT WHEN run_id IS NOT NULL;
        -- A waiting run exists: join it. If it started meanwhile, the slot is free again.
        SELECT r.id, r.status INTO run_id, run_status
        FROM league.runs r WHERE r.status = 'queued' FOR SHARE;
        IF run_id IS NOT NULL THEN
            -- No NOTIFY here: a NOTIFY serialises its transaction's commit with every other
            -- notifying commit, and a joiner changes nothing the live table shows but a count.
            INSERT INTO league.run_triggers (request_id, run_id, triggered_by, match_id, retry_of)
            VALUES (p_request_id, run_id, p_triggered_by, p_match_id, p_retry_of);
            RETURN QUERY SELECT run_id, run_status, false, false;
            RETURN;
        END IF;
    END LOOP;
    INSERT INTO league.run_triggers (request_id, run_id, triggered_by, match_id, retry_of)
    VALUES (p_request_id, run_id, p_triggered_by, p_match_id, p_retry_of);
    PERFORM pg_notify('league_runs', run_id::text);
    RETURN QUERY SELECT run_id, run_status, true, false;
END
$$;

-- The HTTP routes act as the API key's user (role nightcrew_api). League data and runs are
-- shared by everyone; who may write is checked by the routes (admins only).
GRANT USAGE ON SCHEMA league TO nightcrew_api;
GRANT SELECT ON ALL TABLES IN SCHEMA league TO nightcrew_api;
GRANT INSERT, UPDATE ON league.matches, league.appearances, league.runs, league.run_triggers,
    league.invalidation_receipts TO nightcrew_api;
GRANT DELETE ON league.appearances, league.invalidation_receipts TO nightcrew_api;
