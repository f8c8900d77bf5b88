-- nightcrew 0018: the late-entry guard (docs/flow-control.md, "Late wakes").
--
-- A rate slot granted correctly can still be used late: the worker sleeps until the slot,
-- but its process may get the CPU a quarter of a second after it (an event loop busy with
-- another handler, a starved machine), and a late call followed by punctual ones puts
-- N + 1 calls into one window at the provider. So the worker refuses to enter a call more
-- than 2.5 % of the rate's period after its slot (it takes a new one). For that it needs
-- the slot on its own clock, which the reply's `wait` cannot give: it counts from when the
-- function read the clock (after waiting for the key's row lock), and the worker may read
-- the reply late. Both functions now also return `slot_after`: seconds from the
-- statement's start (statement_timestamp(), set when the server received it: no earlier
-- than the worker sent it) to the rate slot, NULL when no rate applies (lateness does not
-- matter then). The worker's send time + slot_after is no later than the slot, so the
-- lateness it computes is never under-reported, and the time queued on the key's lock is
-- left out. And `period`: the rate's period in force (an override's, when there is one;
-- with several rate keys the shortest), since the lateness allowed is a share of it.
--
-- Same arguments and decisions as 0015; the callers read the columns by name, so a worker
-- of the previous version keeps working against this schema.

DROP FUNCTION nightcrew.limit_grant(jsonb, float8, float8);

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
RETURNS TABLE (job_id uuid, wait float8, slot_after float8, period float8)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    stride CONSTANT integer := 200;  -- the largest ring (nightcrew.limit_ring)
    t float8;
    t0 float8 := extract(epoch FROM statement_timestamp());
    shortest float8;  -- the job's shortest rate period (NULL: no rate)
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
            slot_after := NULL;
            period := NULL;
            RETURN NEXT;
            CONTINUE;
        END IF;
        -- Rate: the reserved slot, else the next by tat (GCRA, burst 1/20 s); never
        -- sooner than the ring allows (see limit_next_slot, its one-call twin).
        slot := t;
        shortest := NULL;
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
            shortest := least(shortest, k_seconds[i]);
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
            slot_after := NULL;
            period := NULL;
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
        -- From the statement's start (before the key locks): see the header.
        slot_after := CASE WHEN shortest IS NOT NULL THEN slot - t0 END;
        period := shortest;
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

DROP FUNCTION nightcrew.limit_acquire(text, integer, float8, integer, uuid, integer);

-- ctx.limit(): take a slot of one key for a running attempt. granted=false: the key's
-- concurrency is full (retry later, nothing taken). Else the call may go in `wait`
-- seconds (its rate slot is reserved already), holding concurrency slot `slot_id` (or
-- NULL without a concurrency limit) until it is released.
CREATE FUNCTION nightcrew.limit_acquire(p_key text, p_rate_count integer,
                                        p_rate_seconds float8, p_concurrency integer,
                                        p_job uuid, p_attempt integer,
                                        OUT granted boolean, OUT wait float8, OUT slot_id uuid,
                                        OUT slot_after float8, OUT period float8)
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
        slot_after := extract(epoch FROM call_at - statement_timestamp());
        period := eff.rate_seconds;
    END IF;
END
$$;
