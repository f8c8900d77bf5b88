-- nightcrew 0013: flow control. Keyed rate and concurrency limits enforced here, in the
-- database, so that they hold across every worker process and host; and paused queues.
-- How and at what cost: docs/flow-control.md.

-- A paused queue: fetches leave its jobs alone until the row is deleted (resume).
CREATE TABLE nightcrew.queue_pauses (
    queue      text PRIMARY KEY CHECK (queue <> ''),
    paused_at  timestamptz NOT NULL DEFAULT now(),
    paused_by  text
);

-- One row per concrete limit key ("places", "tenant:alice"): the limit the code asked for
-- (recorded at each grant), an operator's override, and the rate's GCRA state.
CREATE TABLE nightcrew.limits (
    key                   text PRIMARY KEY CHECK (key <> ''),
    code_rate_count       integer CHECK (code_rate_count > 0),
    code_rate_seconds     double precision CHECK (code_rate_seconds > 0),
    code_concurrency      integer CHECK (code_concurrency > 0),
    overridden            boolean NOT NULL DEFAULT false,
    override_rate_count   integer CHECK (override_rate_count > 0),
    override_rate_seconds double precision CHECK (override_rate_seconds > 0),
    override_concurrency  integer CHECK (override_concurrency > 0),
    overridden_by         text,
    -- GCRA's theoretical arrival time: when the key's next call is due at the steady rate.
    tat                   timestamptz,
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CHECK ((code_rate_count IS NULL) = (code_rate_seconds IS NULL)),
    CHECK ((override_rate_count IS NULL) = (override_rate_seconds IS NULL))
);

-- Concurrency slots. A slot counts only while the attempt holding it is still processing
-- (status and attempts match), so a finished, released or rescued attempt frees its slot
-- without anyone deleting it; the grant removes such dead rows of a key before counting.
CREATE TABLE nightcrew.limit_slots (
    id          uuid PRIMARY KEY,
    key         text NOT NULL,
    job_id      uuid NOT NULL,
    attempt     integer NOT NULL,
    acquired_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX limit_slots_key_idx ON nightcrew.limit_slots (key);
CREATE INDEX limit_slots_job_idx ON nightcrew.limit_slots (job_id);

-- A rate slot reserved for a job given back until then: when the job is fetched again at
-- its slot it runs without taking another token (each job consumes one token per key).
CREATE TABLE nightcrew.limit_reservations (
    job_id  uuid NOT NULL,
    key     text NOT NULL,
    slot_at timestamptz NOT NULL,
    PRIMARY KEY (job_id, key)
);

-- The effective limits of a key: the override when there is one, else the code's.
CREATE FUNCTION nightcrew.limit_effective(l nightcrew.limits,
                                          OUT rate_count integer,
                                          OUT rate_seconds double precision,
                                          OUT concurrency integer)
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN l.overridden THEN l.override_rate_count ELSE l.code_rate_count END,
           CASE WHEN l.overridden THEN l.override_rate_seconds ELSE l.code_rate_seconds END,
           CASE WHEN l.overridden THEN l.override_concurrency ELSE l.code_concurrency END
$$;

-- Concurrency slots of a key held by attempts still running (dead rows deleted first).
CREATE FUNCTION nightcrew.limit_slots_live(p_key text) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    live integer;
BEGIN
    DELETE FROM nightcrew.limit_slots AS s
    WHERE s.key = p_key
      AND NOT EXISTS (SELECT 1 FROM nightcrew.jobs AS j
                      WHERE j.id = s.job_id AND j.attempts = s.attempt
                        AND j.status = 'processing');
    SELECT count(*) INTO live FROM nightcrew.limit_slots WHERE key = p_key;
    RETURN live;
END
$$;

-- Take the next rate slot of a locked key (GCRA): returns when the call may go. A burst of
-- up to 1/20 s worth of calls (at least one) may go at once; beyond it, calls are spaced
-- at the steady rate, so any window of W seconds holds at most rate * W + burst calls.
CREATE FUNCTION nightcrew.limit_take_rate(p_key text, p_count integer, p_seconds float8,
                                          p_now timestamptz) RETURNS timestamptz
LANGUAGE plpgsql AS $$
DECLARE
    spacing interval := make_interval(secs => p_seconds / p_count);
    burst integer := greatest(1, floor(p_count * 0.05 / p_seconds))::integer;
    due timestamptz;
    slot timestamptz;
BEGIN
    SELECT coalesce(tat, p_now) INTO due FROM nightcrew.limits WHERE key = p_key;
    slot := greatest(p_now, due - spacing * (burst - 1));
    UPDATE nightcrew.limits SET tat = greatest(due, slot) + spacing WHERE key = p_key;
    RETURN slot;
END
$$;

-- Record the limits the code asks for (first row of each key wins) and lock those keys in
-- key order, so that grants of overlapping keys queue up instead of deadlocking.
CREATE FUNCTION nightcrew.limit_lock_keys(p_limits jsonb) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO nightcrew.limits AS l (key, code_rate_count, code_rate_seconds, code_concurrency)
    SELECT DISTINCT ON (x.key) x.key, x.rate_count, x.rate_seconds, x.concurrency
    FROM jsonb_to_recordset(p_limits)
         AS x(key text, rate_count integer, rate_seconds float8, concurrency integer)
    ORDER BY x.key
    -- A conflicting row is locked even when the WHERE leaves it unchanged.
    ON CONFLICT (key) DO UPDATE
        SET code_rate_count = EXCLUDED.code_rate_count,
            code_rate_seconds = EXCLUDED.code_rate_seconds,
            code_concurrency = EXCLUDED.code_concurrency,
            updated_at = now()
        WHERE (l.code_rate_count, l.code_rate_seconds, l.code_concurrency)
              IS DISTINCT FROM (EXCLUDED.code_rate_count, EXCLUDED.code_rate_seconds,
                                EXCLUDED.code_concurrency)
$$;

-- The grant step right after a fetch, for the fetched jobs that have limits:
-- p_jobs = [{"id", "attempt", "limits": [{"key", "rate_count", "rate_seconds",
-- "concurrency"}]}] in fetch order. Returns every job: wait >= 0 for one that may start,
-- in that many seconds (its rate slot, at most p_hold); wait < 0 for one given back in the
-- same transaction, its attempt not counted: to 'pending', run_at -wait seconds on (at its
-- reserved rate slot, or p_recheck seconds on when a concurrency limit is full).
CREATE FUNCTION nightcrew.limit_grant(p_jobs jsonb, p_hold float8, p_recheck float8)
RETURNS TABLE (job_id uuid, wait float8)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    t timestamptz;
    job jsonb;
    lim record;
    eff record;
    ok boolean;
    slot timestamptz;
    key_slot timestamptz;
    back_ids uuid[] := '{}';
    back_attempts integer[] := '{}';
    back_at timestamptz[] := '{}';
BEGIN
    PERFORM nightcrew.limit_lock_keys(
        (SELECT coalesce(jsonb_agg(x), '[]') FROM jsonb_array_elements(p_jobs) AS j,
                jsonb_array_elements(j -> 'limits') AS x));
    t := clock_timestamp();  -- after the locks: the time the slots are taken at
    FOR job IN SELECT value FROM jsonb_array_elements(p_jobs) LOOP
        ok := true;
        FOR lim IN SELECT * FROM jsonb_to_recordset(job -> 'limits') AS x(key text) LOOP
            SELECT e.* INTO eff FROM nightcrew.limits AS l,
                   LATERAL nightcrew.limit_effective(l) AS e WHERE l.key = lim.key;
            IF eff.concurrency IS NOT NULL
               AND nightcrew.limit_slots_live(lim.key) >= eff.concurrency THEN
                ok := false;
            END IF;
        END LOOP;
        IF NOT ok THEN
            back_ids := back_ids || (job ->> 'id')::uuid;
            back_attempts := back_attempts || (job ->> 'attempt')::integer;
            back_at := back_at || (t + make_interval(secs => p_recheck));
            job_id := (job ->> 'id')::uuid;
            wait := -p_recheck;
            RETURN NEXT;
            CONTINUE;
        END IF;
        slot := t;
        FOR lim IN SELECT * FROM jsonb_to_recordset(job -> 'limits') AS x(key text) LOOP
            SELECT e.* INTO eff FROM nightcrew.limits AS l,
                   LATERAL nightcrew.limit_effective(l) AS e WHERE l.key = lim.key;
            IF eff.rate_count IS NULL THEN
                CONTINUE;
            END IF;
            SELECT r.slot_at INTO key_slot FROM nightcrew.limit_reservations AS r
            WHERE r.job_id = (job ->> 'id')::uuid AND r.key = lim.key;
            IF NOT FOUND THEN
                key_slot := nightcrew.limit_take_rate(lim.key, eff.rate_count,
                                                      eff.rate_seconds, t);
                INSERT INTO nightcrew.limit_reservations (job_id, key, slot_at)
                VALUES ((job ->> 'id')::uuid, lim.key, key_slot);
            END IF;
            slot := greatest(slot, key_slot);
        END LOOP;
        IF slot - t > make_interval(secs => p_hold) THEN
            back_ids := back_ids || (job ->> 'id')::uuid;
            back_attempts := back_attempts || (job ->> 'attempt')::integer;
            back_at := back_at || slot;
            job_id := (job ->> 'id')::uuid;
            wait := -extract(epoch FROM slot - t)::float8;
            RETURN NEXT;
            CONTINUE;
        END IF;
        DELETE FROM nightcrew.limit_reservations AS r WHERE r.job_id = (job ->> 'id')::uuid;
        INSERT INTO nightcrew.limit_slots (id, key, job_id, attempt)
        SELECT gen_random_uuid(), x.key, (job ->> 'id')::uuid, (job ->> 'attempt')::integer
        FROM jsonb_to_recordset(job -> 'limits') AS x(key text)
        JOIN nightcrew.limits AS l ON l.key = x.key
        CROSS JOIN LATERAL nightcrew.limit_effective(l) AS e
        WHERE e.concurrency IS NOT NULL;
        job_id := (job ->> 'id')::uuid;
        wait := greatest(0, extract(epoch FROM slot - t))::float8;
        RETURN NEXT;
    END LOOP;
    IF cardinality(back_ids) > 0 THEN
        -- One statement for all given-back jobs (the jobs triggers run once). 'pending',
        -- never 'retrying': a held-back job did not fail, and is not counted as retried.
        -- started_at stays set, so a 'queued' dedupe follow-up cannot collide with it.
        UPDATE nightcrew.jobs AS j
        SET status = 'pending',
            attempts = j.attempts - 1,
            run_at = b.run_at,
            worker_id = NULL,
            lease_expires_at = NULL,
            updated_at = now()
        FROM unnest(back_ids, back_attempts, back_at) AS b(id, attempt, run_at)
        WHERE j.id = b.id AND j.attempts = b.attempt AND j.status = 'processing';
    END IF;
END
$$;

-- ctx.limit(): take a slot of one key for a running attempt. granted=false: the key's
-- concurrency is full (retry later, nothing taken). Else the call may go in `wait`
-- seconds (its rate slot is reserved already), holding concurrency slot `slot_id` (or
-- NULL without a concurrency limit) until it is released.
CREATE FUNCTION nightcrew.limit_acquire(p_key text, p_rate_count integer,
                                        p_rate_seconds float8, p_concurrency integer,
                                        p_job uuid, p_attempt integer,
                                        OUT granted boolean, OUT wait float8, OUT slot_id uuid)
LANGUAGE plpgsql AS $$
DECLARE
    eff record;
    t timestamptz;
BEGIN
    PERFORM nightcrew.limit_lock_keys(jsonb_build_array(jsonb_build_object(
        'key', p_key, 'rate_count', p_rate_count, 'rate_seconds', p_rate_seconds,
        'concurrency', p_concurrency)));
    t := clock_timestamp();
    SELECT e.* INTO eff FROM nightcrew.limits AS l,
           LATERAL nightcrew.limit_effective(l) AS e WHERE l.key = p_key;
    granted := eff.concurrency IS NULL OR nightcrew.limit_slots_live(p_key) < eff.concurrency;
    wait := 0;
    IF NOT granted THEN
        RETURN;
    END IF;
    IF eff.concurrency IS NOT NULL THEN
        slot_id := gen_random_uuid();
        INSERT INTO nightcrew.limit_slots (id, key, job_id, attempt)
        VALUES (slot_id, p_key, p_job, p_attempt);
    END IF;
    IF eff.rate_count IS NOT NULL THEN
        wait := greatest(0, extract(epoch FROM
            nightcrew.limit_take_rate(p_key, eff.rate_count, eff.rate_seconds, t) - t));
    END IF;
END
$$;
