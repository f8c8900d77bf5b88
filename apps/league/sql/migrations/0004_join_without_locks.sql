-- A trigger joins the waiting run without a lock the run's start must wait behind, and
-- writes no shared row: under 50 concurrent triggers the share lock of 0003 made every
-- joiner queue behind the start's transaction (eleven jobs fanned out, a notifying commit),
-- and the start behind every joiner.
--
-- What the share lock guaranteed, and what guarantees it now: a trigger whose transaction
-- wrote something the run must see (a post-match result) and joined waiting run X has its
-- writes visible to X's statistics functions. Such a joiner holds X's join lock (an
-- advisory lock, shared, to its commit) and checks after taking it that X still waits;
-- each of X's function jobs takes the same lock exclusively, for an instant, before it
-- computes. A joiner that took the lock first is waited for; one that takes it after a
-- function job did sees X processing (the function job runs after X's start committed) and
-- joins the next run instead. A trigger with no writes of its own needs no lock: what it
-- asks the run to see was committed before it read X waiting, so before X started.
--
-- The new run's live-table notification is sent after the creator's commit, by the caller
-- (league.runs.announce): a NOTIFY in the transaction serialises its commit with every
-- other notifying commit of the cluster, and triggers arriving meanwhile wait for it.

CREATE FUNCTION league.join_lock(p_run_id uuid) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN hashtextextended('league.join:' || p_run_id::text, 0);

-- A new run needs a refresh job only when no run is processing: a processing run starts
-- the waiting one in the transaction that ends it (league.runs.finish_run). The creator
-- holds the runs lock shared (finish_run takes it exclusively) from before it looks for a
-- processing run to its commit, so a run it saw processing ends only after the new run is
-- committed, and its end sees it and starts it. The creator's transaction is then its
-- statement and its commit (no enqueue, no NOTIFY): the window in which triggers arriving
-- while no run waits queue behind its uncommitted run.
DROP FUNCTION league.request_run(text, text, integer, uuid);
CREATE FUNCTION league.request_run(p_triggered_by text, p_request_id text,
                                   p_match_id integer, p_retry_of uuid)
RETURNS TABLE (id uuid, status text, created boolean, existing boolean, needs_job boolean)
LANGUAGE plpgsql AS $$
DECLARE
    run_id     uuid;
    run_status text;
    processing boolean;
    -- Wrote before asking (only a write or a row lock assigns an xid): the run must see it.
    wrote      boolean := p_triggered_by = 'post-match'
                          OR pg_current_xact_id_if_assigned() IS NOT NULL;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('league.request:' || p_request_id));
    SELECT r.id, r.status INTO run_id, run_status
    FROM league.run_triggers t JOIN league.runs r ON r.id = t.run_id
    WHERE t.request_id = p_request_id;
    IF FOUND THEN
        RETURN QUERY SELECT run_id, run_status, false, true, false;
        RETURN;
    END IF;
    LOOP
        -- The waiting run, read without a lock (each statement here sees the latest
        -- commits: a run started meanwhile is no longer 'queued').
        SELECT r.id, r.status INTO run_id, run_status
        FROM league.runs r WHERE r.status = 'queued';
        IF run_id IS NOT NULL AND wrote THEN
            PERFORM pg_advisory_xact_lock_shared(league.join_lock(run_id));
            PERFORM FROM league.runs r WHERE r.id = run_id AND r.status = 'queued';
            IF NOT FOUND THEN
                CONTINUE;  -- it started before our lock: join or create the next one
            END IF;
        END IF;
        IF run_id IS NOT NULL THEN
            -- Our own row only (the foreign key's check takes a key-share lock, which the
            -- start's update does not conflict with); no NOTIFY: the live table shows a
            -- joiner as a count only.
            INSERT INTO league.run_triggers (request_id, run_id, triggered_by, match_id, retry_of)
            VALUES (p_request_id, run_id, p_triggered_by, p_match_id, p_retry_of);
            RETURN QUERY SELECT run_id, run_status, false, false, false;
            RETURN;
        END IF;
        -- None waits: create it. A concurrent creator's uncommitted run makes this wait for
        -- its commit, then the next turn joins it.
        PERFORM pg_advisory_xact_lock_shared(hashtext('league.runs'));
        processing := EXISTS (SELECT FROM league.runs r WHERE r.status = 'processing');
        INSERT INTO league.runs (triggered_by, request_id, match_id, retry_of)
        VALUES (p_triggered_by, p_request_id, p_match_id, p_retry_of)
        ON CONFLICT ((league.runs.status)) WHERE league.runs.status = 'queued' DO NOTHING
        RETURNING league.runs.id, league.runs.status INTO run_id, run_status;
        EXIT WHEN run_id IS NOT NULL;
    END LOOP;
    INSERT INTO league.run_triggers (request_id, run_id, triggered_by, match_id, retry_of)
    VALUES (p_request_id, run_id, p_triggered_by, p_match_id, p_retry_of);
    RETURN QUERY SELECT run_id, run_status, true, false, NOT processing;
END
$$;

-- The creator's transaction is the one joiners wait for when no run waits (their insert
-- meets its uncommitted run): it no longer spends a round trip naming the run's refresh job
-- on the run (the job names its run in its payload).
ALTER TABLE league.runs DROP COLUMN refresh_job_id;
