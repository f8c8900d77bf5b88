-- nightcrew 0005: completion notifications (email, signed webhooks, in-app) and health alerts.
--
-- * jobs.notify: what to send when the job finishes (NULL: nothing, the common case).
-- * A statement-level trigger turns every finish of a job with notify into one
--   'nightcrew.notify' job, in the same transaction as the state change: a notification is
--   never lost with a crash and never created twice. Delivery runs as an ordinary job, so a
--   dead mail server or receiver only delays it.
-- * deliveries: one row per (event, channel), so a retried notify job skips channels done.
-- * notifications: the in-app inbox, per user, under row-level security.
-- * alerts / alert_watch: health alerts (one open alert per rule) and how long a condition
--   has held (for rules like "queue depth > 100 for 5 minutes").

ALTER TABLE nightcrew.jobs ADD COLUMN notify jsonb;

-- Time-ordered ids for rows created inside the database (same layout as nightcrew.ids):
-- a random v4 uuid with its first 48 bits replaced by Unix milliseconds, version set to 7.
CREATE FUNCTION nightcrew.uuid7() RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
    SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
        PLACING substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint)
                          FROM 3)
        FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid
$$;

CREATE FUNCTION nightcrew.jobs_notify_finished() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    queued integer;
BEGIN
    -- The cheap exit every batch of jobs without notify takes (a trigger's WHEN clause
    -- cannot look at transition tables).
    IF NOT EXISTS (SELECT 1 FROM notify_new WHERE notify IS NOT NULL) THEN
        RETURN NULL;
    END IF;
    WITH events AS (
        SELECT n.id, n.status::text AS status, n.attempts,
               'job:' || n.id || ':' || n.status::text || ':'
                   || (extract(epoch FROM coalesce(n.completed_at, n.updated_at)) * 1000000)
                      ::bigint AS event_key
        FROM notify_new AS n JOIN notify_old AS o ON o.id = n.id
        WHERE n.notify IS NOT NULL
          AND n.status IS DISTINCT FROM o.status
          AND n.status IN ('completed', 'failed', 'cancelled')
          AND jsonb_exists(coalesce(n.notify -> 'on', '["completed", "failed"]'::jsonb),
                           n.status::text)
    ), queued_jobs AS (
        INSERT INTO nightcrew.jobs (id, type, queue, payload, max_attempts, dedupe_key)
        SELECT nightcrew.uuid7(), 'nightcrew.notify', 'nightcrew',
               jsonb_build_object('kind', 'job', 'job_id', e.id, 'status', e.status,
                                  'attempts', e.attempts, 'event_key', e.event_key),
               8, 'notify:' || e.event_key
        FROM events AS e
        ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL
            AND status IN ('pending', 'processing', 'retrying')
        DO NOTHING
        RETURNING 1
    )
    SELECT count(*) INTO queued FROM queued_jobs;
    IF queued > 0 THEN
        PERFORM pg_notify('nightcrew_jobs', 'nightcrew');
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_notify_finished
    AFTER UPDATE ON nightcrew.jobs
    REFERENCING OLD TABLE AS notify_old NEW TABLE AS notify_new
    FOR EACH STATEMENT EXECUTE FUNCTION nightcrew.jobs_notify_finished();

-- ---- deliveries ------------------------------------------------------------------------------

CREATE TABLE nightcrew.deliveries (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_key        text NOT NULL,
    job_id           uuid,
    alert_id         bigint,
    channel          text NOT NULL CHECK (channel IN ('email', 'webhook', 'in_app')),
    target           text NOT NULL,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'sent', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    last_status_code integer,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    UNIQUE (event_key, channel)
);
CREATE INDEX deliveries_job_idx ON nightcrew.deliveries (job_id) WHERE job_id IS NOT NULL;

-- ---- in-app notifications -------------------------------------------------------------------

CREATE TABLE nightcrew.notifications (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    text NOT NULL,
    job_id     uuid,
    kind       text NOT NULL,
    title      text NOT NULL,
    body       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    read_at    timestamptz
);
CREATE INDEX notifications_user_idx ON nightcrew.notifications (user_id, id);
-- The badge: unread rows only, so counting stays cheap however long the inbox grows.
CREATE INDEX notifications_unread_idx ON nightcrew.notifications (user_id)
    WHERE read_at IS NULL;

ALTER TABLE nightcrew.notifications ENABLE ROW LEVEL SECURITY;
CREATE POLICY notifications_owner ON nightcrew.notifications TO nightcrew_api
    USING (user_id = current_setting('nightcrew.user_id', true))
    WITH CHECK (user_id = current_setting('nightcrew.user_id', true));
GRANT SELECT, UPDATE (read_at) ON nightcrew.notifications TO nightcrew_api;

-- ---- alerts ---------------------------------------------------------------------------------

CREATE TABLE nightcrew.alerts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule        text NOT NULL CHECK (rule <> ''),
    status      text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    message     text NOT NULL,
    details     jsonb NOT NULL DEFAULT '{}'::jsonb,
    opened_at   timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz,
    CHECK ((status = 'resolved') = (resolved_at IS NOT NULL))
);
-- At most one open alert per rule: a condition that holds opens one alert, not a storm.
CREATE UNIQUE INDEX alerts_open_rule_idx ON nightcrew.alerts (rule) WHERE status = 'open';

-- Since when each sustained condition has held (deleted when it stops holding).
CREATE TABLE nightcrew.alert_watch (
    rule  text PRIMARY KEY,
    since timestamptz NOT NULL
);

ALTER TABLE nightcrew.alerts ENABLE ROW LEVEL SECURITY;
CREATE POLICY alerts_admin ON nightcrew.alerts FOR SELECT TO nightcrew_api
    USING (current_setting('nightcrew.is_admin', true) = 'true');
GRANT SELECT ON nightcrew.alerts TO nightcrew_api;
