-- nightcrew 0013: nightcrew.jobs_history partitioned by month of archived_at.
--
-- Retention then drops whole months (a file unlinked, no dead tuples, no vacuum) instead of
-- deleting rows. Monthly partitions live in the schema nightcrew_history, named
-- jobs_history_YYYY_MM (UTC months); pruning creates the current and the next month's
-- before it archives. A row no monthly partition takes (an archived_at far in the past or
-- future) lands in the default partition, which retention still trims row by row.

CREATE SCHEMA IF NOT EXISTS nightcrew_history;

ALTER TABLE nightcrew.jobs_history RENAME TO jobs_history_unpartitioned;
ALTER INDEX nightcrew.jobs_history_pkey RENAME TO jobs_history_unpartitioned_pkey;

-- The primary key of a partitioned table must hold the partition key; ids stay unique
-- because a job is archived once, when pruning deletes it from nightcrew.jobs.
CREATE TABLE nightcrew.jobs_history (
    id            uuid NOT NULL,
    type          text NOT NULL,
    queue         text NOT NULL,
    status        nightcrew.job_status NOT NULL,
    schedule_name text,
    created_at    timestamptz NOT NULL,
    completed_at  timestamptz,
    archived_at   timestamptz NOT NULL DEFAULT now(),
    job           jsonb NOT NULL,
    PRIMARY KEY (id, archived_at)
) PARTITION BY RANGE (archived_at);

CREATE TABLE nightcrew_history.jobs_history_default
    PARTITION OF nightcrew.jobs_history DEFAULT;

-- The month partition holding ``at`` (created when missing); its name, or NULL when the
-- default partition already holds rows of that month (they stay there).
CREATE FUNCTION nightcrew.history_partition(at timestamptz) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    month_start timestamp := date_trunc('month', at AT TIME ZONE 'UTC');
    name text := 'jobs_history_' || to_char(month_start, 'YYYY_MM');
BEGIN
    IF to_regclass('nightcrew_history.' || name) IS NULL THEN
        EXECUTE format(
            'CREATE TABLE nightcrew_history.%I PARTITION OF nightcrew.jobs_history'
            ' FOR VALUES FROM (%L) TO (%L)', name,
            month_start AT TIME ZONE 'UTC', (month_start + interval '1 month') AT TIME ZONE 'UTC');
    END IF;
    RETURN name;
EXCEPTION
    WHEN duplicate_table THEN RETURN name;  -- created by a concurrent caller
    WHEN check_violation THEN RETURN NULL;  -- the default partition has rows of this month
END $$;

-- Drop one month partition; return how many rows it held. The drop needs a brief exclusive
-- lock on jobs_history: wait for it at most 2 s (not queueing behind a long reader, with
-- every reader then queued behind the drop); the next retention run tries again.
CREATE FUNCTION nightcrew.drop_history_partition(name text) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    held bigint;
BEGIN
    IF name !~ '^jobs_history_\d{4}_\d{2}$' THEN
        RAISE EXCEPTION 'not a month partition of nightcrew.jobs_history: %', name;
    END IF;
    PERFORM set_config('lock_timeout', '2s', true);
    EXECUTE format('SELECT count(*) FROM nightcrew_history.%I', name) INTO held;
    EXECUTE format('DROP TABLE nightcrew_history.%I', name);
    RETURN held;
END $$;

REVOKE EXECUTE ON FUNCTION nightcrew.history_partition(timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION nightcrew.drop_history_partition(text) FROM PUBLIC;

-- Partitions for every month that has archived rows, this month and the next; then the rows.
SELECT nightcrew.history_partition(m)
FROM (SELECT archived_at AS m FROM nightcrew.jobs_history_unpartitioned
      UNION SELECT now() UNION SELECT now() + interval '1 month') AS months;
INSERT INTO nightcrew.jobs_history
SELECT id, type, queue, status, schedule_name, created_at, completed_at, archived_at, job
FROM nightcrew.jobs_history_unpartitioned;
DROP TABLE nightcrew.jobs_history_unpartitioned;

-- Readable through the API as before (0010): admins every row, a user their own jobs.
ALTER TABLE nightcrew.jobs_history ENABLE ROW LEVEL SECURITY;
CREATE POLICY jobs_history_owner ON nightcrew.jobs_history FOR SELECT TO nightcrew_api
    USING (current_setting('nightcrew.is_admin', true) = 'true'
           OR job ->> 'user_id' = current_setting('nightcrew.user_id', true));
GRANT SELECT ON nightcrew.jobs_history TO nightcrew_api;
