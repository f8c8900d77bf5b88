-- nightcrew 0012: time remaining, schedule statistics, quiet-time schedules, notification
-- preferences and the admin's dead-letter emails.
--
-- * jobs.progress_base / progress_base_at: the progress and time of the attempt's first
--   progress save (save_progress sets them), so a job's own rate ignores the time before
--   its first save and the progress it resumed with from a checkpoint.
-- * schedules.quiet_backlog / run_by_seconds: a tick of a "quiet" schedule waits until
--   fewer than quiet_backlog jobs are runnable, at most run_by_seconds after the tick.
-- * schedule_runs_daily: per schedule and UTC day, the runs that succeeded and failed, their
--   durations and the last outcome; written by the trigger below when a scheduled job ends,
--   so the schedules' 7-day figures never read the jobs table.
-- * dead_letters / dead_letter_minutes: every job that ends failed, numbered within its
--   minute (seq), for the admin's emails (nightcrew.dead_letter_mail).
-- * notification_prefs: each user's own notification settings, under row-level security.

ALTER TABLE nightcrew.jobs ADD COLUMN progress_base real, ADD COLUMN progress_base_at timestamptz;

ALTER TABLE nightcrew.schedules
    ADD COLUMN quiet_backlog integer CHECK (quiet_backlog >= 1),
    ADD COLUMN run_by_seconds double precision CHECK (run_by_seconds > 0),
    ADD CHECK ((quiet_backlog IS NULL) = (run_by_seconds IS NULL));

CREATE TABLE nightcrew.schedule_runs_daily (
    schedule_name text NOT NULL,
    day           date NOT NULL,
    succeeded     bigint NOT NULL DEFAULT 0,
    failed        bigint NOT NULL DEFAULT 0,
    duration_sum  double precision NOT NULL DEFAULT 0,
    duration_n    bigint NOT NULL DEFAULT 0,
    last_at       timestamptz NOT NULL,
    last_status   text NOT NULL,
    PRIMARY KEY (schedule_name, day)
);

CREATE TABLE nightcrew.dead_letter_minutes (
    minute timestamptz PRIMARY KEY,
    n      integer NOT NULL
);

CREATE TABLE nightcrew.dead_letters (
    job_id  uuid PRIMARY KEY,
    type    text NOT NULL,
    error   text,
    died_at timestamptz NOT NULL,
    minute  timestamptz NOT NULL,
    seq     integer NOT NULL
);
CREATE INDEX dead_letters_minute_idx ON nightcrew.dead_letters (minute, seq);

-- Scheduled jobs that end and jobs that die, counted in the statement that ends them. The
-- cheap exit is what every fetch, lease renewal and progress save takes.
CREATE FUNCTION nightcrew.jobs_record_endings() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM ending_new
                   WHERE status = 'failed'
                      OR (status = 'completed' AND schedule_name IS NOT NULL)) THEN
        RETURN NULL;
    END IF;
    WITH ended AS (
        SELECT n.id, n.type, n.schedule_name, n.status::text AS status, n.error,
               coalesce(n.completed_at, now()) AS at,
               extract(epoch FROM n.completed_at - n.started_at)::float8 AS secs
        FROM ending_new AS n JOIN ending_old AS o ON o.id = n.id
        WHERE n.status IN ('completed', 'failed') AND o.status <> n.status
    ), runs AS (
        INSERT INTO nightcrew.schedule_runs_daily AS d (
            schedule_name, day, succeeded, failed, duration_sum, duration_n, last_at,
            last_status)
        SELECT schedule_name, (at AT TIME ZONE 'UTC')::date,
               count(*) FILTER (WHERE status = 'completed'),
               count(*) FILTER (WHERE status = 'failed'),
               coalesce(sum(secs), 0), count(secs), max(at),
               (array_agg(status ORDER BY at DESC))[1]
        FROM ended
        WHERE schedule_name IS NOT NULL
        GROUP BY 1, 2
        ON CONFLICT (schedule_name, day) DO UPDATE SET
            succeeded = d.succeeded + EXCLUDED.succeeded,
            failed = d.failed + EXCLUDED.failed,
            duration_sum = d.duration_sum + EXCLUDED.duration_sum,
            duration_n = d.duration_n + EXCLUDED.duration_n,
            last_status = CASE WHEN EXCLUDED.last_at >= d.last_at THEN EXCLUDED.last_status
                               ELSE d.last_status END,
            last_at = greatest(d.last_at, EXCLUDED.last_at)
    ), minutes AS (
        -- The counter row is locked by the upsert: concurrent statements number their dead
        -- jobs one after the other, never twice the same seq.
        INSERT INTO nightcrew.dead_letter_minutes AS m (minute, n)
        SELECT date_trunc('minute', at), count(*) FROM ended WHERE status = 'failed' GROUP BY 1
        ON CONFLICT (minute) DO UPDATE SET n = m.n + EXCLUDED.n
        RETURNING minute, n
    )
    INSERT INTO nightcrew.dead_letters (job_id, type, error, died_at, minute, seq)
    SELECT e.id, e.type, e.error, e.at, m.minute,
           m.n - count(*) OVER (PARTITION BY m.minute)
               + row_number() OVER (PARTITION BY m.minute ORDER BY e.at, e.id)
    FROM ended AS e JOIN minutes AS m ON m.minute = date_trunc('minute', e.at)
    WHERE e.status = 'failed'
    ON CONFLICT (job_id) DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_record_endings
    AFTER UPDATE ON nightcrew.jobs
    REFERENCING OLD TABLE AS ending_old NEW TABLE AS ending_new
    FOR EACH STATEMENT EXECUTE FUNCTION nightcrew.jobs_record_endings();

-- ---- notification preferences ------------------------------------------------------------

CREATE TABLE nightcrew.notification_prefs (
    user_id      text PRIMARY KEY,
    email        text,
    webhook      text,
    on_completed text[] NOT NULL DEFAULT '{}',
    on_failed    text[] NOT NULL DEFAULT '{}',
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (on_completed <@ ARRAY['email', 'in_app', 'webhook']),
    CHECK (on_failed <@ ARRAY['email', 'in_app', 'webhook'])
);

ALTER TABLE nightcrew.notification_prefs ENABLE ROW LEVEL SECURITY;
CREATE POLICY notification_prefs_owner ON nightcrew.notification_prefs TO nightcrew_api
    USING (user_id = current_setting('nightcrew.user_id', true))
    WITH CHECK (user_id = current_setting('nightcrew.user_id', true));
GRANT SELECT, INSERT, UPDATE ON nightcrew.notification_prefs TO nightcrew_api;
