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
    -- When the last calls granted went (sorted, at most 200): no window may hold more.
    recent                timestamptz[] NOT NULL DEFAULT '{}',
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

-- Rate slots (GCRA, with a record of the calls granted). The next slot of a locked key
-- comes from its theoretical arrival time `tat`: a burst of up to 1/20 s worth of calls
-- (at least one) may go at once; beyond it calls are spaced 5 % wider than the rate, a
-- margin for the jitter between a slot and the call's real start (and the provider's
-- clock). A job given back holds a reserved slot (limit_reservations) and advances `tat`;
-- when it is late for its slot (a slow fetch) it must not bunch up with the slots after
-- it, so no slot is granted while the last `ring` calls granted (`recent`) would then fall
-- in one window: at most `ring` calls in any `ring / rate` seconds (+ the 5 % margin),
-- whatever the delays.
CREATE FUNCTION nightcrew.limit_spacing(p_count integer, p_seconds float8) RETURNS interval
LANGUAGE sql IMMUTABLE AS $$ SELECT make_interval(secs => p_seconds / p_count * 1.05) $$;

CREATE FUNCTION nightcrew.limit_ring(p_count integer) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$ SELECT least(p_count, 200) $$;

-- The slot a call of a locked key may take (nothing is written): `p_reserved` when it
-- holds one, else the next by `tat`; never sooner than p_now, nor than the ring allows.
CREATE FUNCTION nightcrew.limit_next_slot(p_key text, p_count integer, p_seconds float8,
                                          p_now timestamptz, p_reserved timestamptz)
RETURNS timestamptz
LANGUAGE plpgsql AS $$
DECLARE
    spacing interval := nightcrew.limit_spacing(p_count, p_seconds);
    burst integer := greatest(1, floor(p_count * 0.05 / p_seconds))::integer;
    ring integer := nightcrew.limit_ring(p_count);
    due timestamptz;
    recent timestamptz[];
    slot timestamptz;
BEGIN
    SELECT coalesce(l.tat, p_now), l.recent INTO due, recent
    FROM nightcrew.limits AS l WHERE l.key = p_key;
    slot := greatest(p_now, coalesce(p_reserved, due - spacing * (burst - 1)));
    IF cardinality(recent) >= ring THEN
        slot := greatest(slot, recent[cardinality(recent) - ring + 1]
                               + nightcrew.limit_spacing(p_count, p_seconds) * ring);
    END IF;
    RETURN slot;
END
$$;

-- A new slot was taken (granted or reserved): the steady rate's next call comes after it.
CREATE FUNCTION nightcrew.limit_advance(p_key text, p_slot timestamptz, p_count integer,
                                        p_seconds float8) RETURNS void
LANGUAGE sql AS $$
    UPDATE nightcrew.limits
    SET tat = greatest(coalesce(tat, p_slot), p_slot) + nightcrew.limit_spacing(p_count, p_seconds)
    WHERE key = p_key
$$;

-- A call goes at p_slot: keep it among the key's last `ring` calls.
CREATE FUNCTION nightcrew.limit_record_call(p_key text, p_slot timestamptz, p_count integer)
RETURNS void
LANGUAGE sql AS $$
    UPDATE nightcrew.limits AS l
    SET recent = CASE
        -- The usual case: later than every recorded call, append and trim.
        WHEN cardinality(l.recent) = 0 OR p_slot >= l.recent[cardinality(l.recent)] THEN
            (l.recent || p_slot)[greatest(1, cardinality(l.recent) + 2
                                             - nightcrew.limit_ring(p_count)):]
        ELSE (SELECT array_agg(x ORDER BY x)
              FROM (SELECT x FROM unnest(l.recent || p_slot) AS u(x)
                    ORDER BY x DESC LIMIT nightcrew.limit_ring(p_count)) AS last) END
    WHERE l.key = p_key
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
-- same transaction, its attempt not counted: to 'pending', run_at -wait seconds on (p_hold
-- before its reserved rate slot, or p_recheck seconds on when a concurrency limit is full).
--
-- Each key's state is read once into arrays (times as epoch seconds, each key's last calls
-- in a circular buffer of 200), the jobs are decided in memory with no query per job, and
-- each table is written once at the end: updating a key's row once per job left hundreds
-- of row versions for every later read to walk (2 ms a job, measured).
CREATE FUNCTION nightcrew.limit_grant(p_jobs jsonb, p_hold float8, p_recheck float8)
RETURNS TABLE (job_id uuid, wait float8)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    stride CONSTANT integer := 200;  -- the largest ring (nightcrew.limit_ring)
    t float8;
    -- Per key, by position in k_key: effective limits, GCRA state, live concurrency, and
    -- the last calls: k_ring[(i - 1) * stride + 1 ..], k_n of them, next write at k_next.
    k_key text[] := '{}';
    k_count integer[] := '{}';
    k_seconds float8[] := '{}';
    k_conc integer[] := '{}';
    k_tat float8[] := '{}';
    k_live integer[] := '{}';
    k_n integer[] := '{}';
    k_next integer[] := '{}';
    k_ring float8[] := '{}';
    reserved_at jsonb;  -- {"<job id>|<key>": epoch} of the batch's reservations
    rec record;
    job jsonb;
    i integer;
    n integer;
    ring integer;
    oldest float8;
    ok boolean;
    id uuid;
    slot float8;
    key_slot float8;
    spacing float8;
    job_keys integer[];
    job_slots float8[];
    back_ids uuid[] := '{}';
    back_attempts integer[] := '{}';
    back_at float8[] := '{}';
    granted uuid[] := '{}';
    res_job uuid[] := '{}';
    res_key text[] := '{}';
    res_at float8[] := '{}';
    slot_job uuid[] := '{}';
    slot_attempt integer[] := '{}';
    slot_key text[] := '{}';
BEGIN
    PERFORM nightcrew.limit_lock_keys(
        (SELECT coalesce(jsonb_agg(x), '[]') FROM jsonb_array_elements(p_jobs) AS j,
                jsonb_array_elements(j -> 'limits') AS x));
    t := extract(epoch FROM clock_timestamp());  -- after the locks: when slots are taken
    FOR rec IN
        SELECT l.key, e.rate_count, e.rate_seconds, e.concurrency,
               coalesce(extract(epoch FROM l.tat)::float8, t) AS tat,
               (SELECT coalesce(array_agg(extract(epoch FROM x)::float8 ORDER BY x), '{}')
                FROM unnest(l.recent) AS x) AS recent
        FROM nightcrew.limits AS l CROSS JOIN LATERAL nightcrew.limit_effective(l) AS e
        WHERE l.key IN (SELECT x ->> 'key' FROM jsonb_array_elements(p_jobs) AS j,
                               jsonb_array_elements(j -> 'limits') AS x)
    LOOP
        i := cardinality(k_key) + 1;
        k_key[i] := rec.key;
        k_count[i] := rec.rate_count;
        k_seconds[i] := rec.rate_seconds;
        k_conc[i] := rec.concurrency;
        k_tat[i] := rec.tat;
        k_live[i] := CASE WHEN rec.concurrency IS NULL THEN 0
                          ELSE nightcrew.limit_slots_live(rec.key) END;
        ring := CASE WHEN rec.rate_count IS NULL THEN 1 ELSE least(rec.rate_count, stride) END;
        n := least(cardinality(rec.recent), ring);
        k_ring[i * stride] := 0;  -- extend the buffer to this key's end
        FOR j IN 1 .. n LOOP  -- the newest n calls, oldest first
            k_ring[(i - 1) * stride + j] := rec.recent[cardinality(rec.recent) - n + j];
        END LOOP;
        k_n[i] := n;
        k_next[i] := n % ring + 1;
    END LOOP;
    SELECT coalesce(jsonb_object_agg(r.job_id::text || '|' || r.key,
                                     extract(epoch FROM r.slot_at)::float8), '{}')
    INTO reserved_at
    FROM nightcrew.limit_reservations AS r
    WHERE r.job_id IN (SELECT (j ->> 'id')::uuid FROM jsonb_array_elements(p_jobs) AS j);

    FOR job IN SELECT value FROM jsonb_array_elements(p_jobs) LOOP
        id := (job ->> 'id')::uuid;
        job_keys := '{}';
        FOR j IN 0 .. jsonb_array_length(job -> 'limits') - 1 LOOP
            job_keys := job_keys || array_position(k_key, job -> 'limits' -> j ->> 'key');
        END LOOP;
        -- Concurrency first: a job that may not run takes no rate slot.
        ok := true;
        FOREACH i IN ARRAY job_keys LOOP
            IF k_conc[i] IS NOT NULL AND k_live[i] >= k_conc[i] THEN
                ok := false;
            END IF;
        END LOOP;
        IF NOT ok THEN
            back_ids := back_ids || id;
            back_attempts := back_attempts || (job ->> 'attempt')::integer;
            back_at := back_at || (t + p_recheck);
            job_id := id;
            wait := -p_recheck;
            RETURN NEXT;
            CONTINUE;
        END IF;
        -- Rate: the reserved slot, else the next by tat (GCRA, burst 1/20 s); never
        -- sooner than the ring allows (see limit_next_slot, its one-call twin).
        slot := t;
        job_slots := '{}';
        FOREACH i IN ARRAY job_keys LOOP
            IF k_count[i] IS NULL THEN
                job_slots := job_slots || NULL::float8;
                CONTINUE;
            END IF;
            spacing := k_seconds[i] / k_count[i] * 1.05;
            ring := least(k_count[i], stride);
            key_slot := (reserved_at ->> (id::text || '|' || k_key[i]))::float8;
            IF key_slot IS NULL THEN
                key_slot := greatest(t, k_tat[i] - spacing
                           * (greatest(1, floor(k_count[i] * 0.05 / k_seconds[i])) - 1));
                k_tat[i] := greatest(k_tat[i], key_slot) + spacing;
            END IF;
            key_slot := greatest(key_slot, t);
            -- The oldest recorded call, n calls back: no n + 1 calls (less the burst) may
            -- fall within n spacings, so late slots cannot bunch even before the ring fills.
            n := k_n[i];
            IF n > 0 THEN
                oldest := k_ring[(i - 1) * stride + CASE WHEN n >= ring THEN k_next[i] ELSE 1 END];
                key_slot := greatest(key_slot, oldest + spacing
                           * (n - greatest(1, floor(k_count[i] * 0.05 / k_seconds[i])) + 1));
            END IF;
            job_slots := job_slots || key_slot;
            slot := greatest(slot, key_slot);
        END LOOP;
        IF slot - t > p_hold THEN
            -- Too far off: reserve the slots and give the job back, runnable p_hold before
            -- its slot: fetched then, it is held for the rest and starts on time instead of
            -- a fetch's latency late (a slot missed is lost).
            FOR j IN 1 .. cardinality(job_keys) LOOP
                IF job_slots[j] IS NOT NULL THEN
                    res_job := res_job || id;
                    res_key := res_key || k_key[job_keys[j]];
                    res_at := res_at || job_slots[j];
                END IF;
            END LOOP;
            back_ids := back_ids || id;
            back_attempts := back_attempts || (job ->> 'attempt')::integer;
            back_at := back_at || (slot - p_hold);
            job_id := id;
            wait := t - (slot - p_hold);
            RETURN NEXT;
            CONTINUE;
        END IF;
        -- Granted: record the call in each rate key's ring, take the concurrency slots.
        granted := granted || id;
        FOREACH i IN ARRAY job_keys LOOP
            IF k_count[i] IS NOT NULL THEN
                ring := least(k_count[i], stride);
                k_ring[(i - 1) * stride + k_next[i]] := slot;
                k_next[i] := k_next[i] % ring + 1;
                k_n[i] := least(k_n[i] + 1, ring);
            END IF;
            IF k_conc[i] IS NOT NULL THEN
                k_live[i] := k_live[i] + 1;
                slot_job := slot_job || id;
                slot_attempt := slot_attempt || (job ->> 'attempt')::integer;
                slot_key := slot_key || k_key[i];
            END IF;
        END LOOP;
        job_id := id;
        wait := slot - t;
        RETURN NEXT;
    END LOOP;

    -- Write everything once: each rate key's tat and last calls (oldest first).
    FOR i IN 1 .. cardinality(k_key) LOOP
        CONTINUE WHEN k_count[i] IS NULL;
        ring := least(k_count[i], stride);
        UPDATE nightcrew.limits AS l
        SET tat = to_timestamp(k_tat[i]),
            recent = (SELECT coalesce(array_agg(to_timestamp(
                                 k_ring[(i - 1) * stride
                                        + ((k_next[i] - k_n[i] - 1 + ring + g) % ring) + 1])
                                 ORDER BY g), '{}')
                      FROM generate_series(0, k_n[i] - 1) AS g)
        WHERE l.key = k_key[i];
    END LOOP;
    IF cardinality(slot_job) > 0 THEN
        INSERT INTO nightcrew.limit_slots (id, key, job_id, attempt)
        SELECT gen_random_uuid(), s.key, s.job, s.attempt
        FROM unnest(slot_key, slot_job, slot_attempt) AS s(key, job, attempt);
    END IF;
    IF cardinality(granted) > 0 THEN
        DELETE FROM nightcrew.limit_reservations AS r WHERE r.job_id = ANY (granted);
    END IF;
    IF cardinality(res_job) > 0 THEN
        INSERT INTO nightcrew.limit_reservations AS r (job_id, key, slot_at)
        SELECT u.job, u.key, to_timestamp(u.at)
        FROM unnest(res_job, res_key, res_at) AS u(job, key, at)
        ON CONFLICT (job_id, key) DO UPDATE SET slot_at = EXCLUDED.slot_at;
    END IF;
    IF cardinality(back_ids) > 0 THEN
        -- One statement for all given-back jobs (the jobs triggers run once). 'pending',
        -- never 'retrying': a held-back job did not fail, and is not counted as retried.
        -- started_at stays set, so a 'queued' dedupe follow-up cannot collide with it.
        UPDATE nightcrew.jobs AS j
        SET status = 'pending',
            attempts = j.attempts - 1,
            run_at = to_timestamp(b.run_at),
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
    call_at timestamptz;
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
        -- The call waits for its slot in the handler, so the slot is its call already.
        call_at := nightcrew.limit_next_slot(p_key, eff.rate_count, eff.rate_seconds, t, NULL);
        PERFORM nightcrew.limit_advance(p_key, call_at, eff.rate_count, eff.rate_seconds);
        PERFORM nightcrew.limit_record_call(p_key, call_at, eff.rate_count);
        wait := greatest(0, extract(epoch FROM call_at - t));
    END IF;
END
$$;
