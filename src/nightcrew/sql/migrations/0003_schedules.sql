-- nightcrew 0003: schedules, the tick columns of jobs and the jobs_history archive.

-- One row per schedule. The definition columns come from code (synced when a scheduler
-- starts; code_hash tells whether the code changed since, so run-time edits survive
-- restarts until the code itself changes); the rest is run-time state.
CREATE TABLE nightcrew.schedules (
    name                text PRIMARY KEY CHECK (name <> ''),
    type                text NOT NULL CHECK (type <> ''),
    cron                text,
    every_seconds       double precision CHECK (every_seconds >= 1),
    timezone            text NOT NULL DEFAULT 'UTC',
    payload             jsonb NOT NULL DEFAULT '{}'::jsonb,
    priority            integer,
    queue               text,
    critical            boolean NOT NULL DEFAULT true,
    missed              text NOT NULL DEFAULT 'run_once' CHECK (missed IN ('run_once', 'skip')),
    defer_delay_seconds double precision NOT NULL DEFAULT 7200 CHECK (defer_delay_seconds > 0),
    max_deferrals       integer NOT NULL DEFAULT 3 CHECK (max_deferrals >= 0),
    code_hash           text,
    in_code             boolean NOT NULL DEFAULT true,
    enabled             boolean NOT NULL DEFAULT true,
    next_run_at         timestamptz NOT NULL,
    last_run_at         timestamptz,
    last_job_id         uuid,
    last_outcome        text,
    deferrals           integer NOT NULL DEFAULT 0,
    deferred_from       timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CHECK ((cron IS NULL) <> (every_seconds IS NULL))
);

-- A fired job remembers its schedule and tick; the unique index makes the enqueue of a
-- tick idempotent, so two schedulers that both believe they lead cannot fire it twice.
ALTER TABLE nightcrew.jobs ADD COLUMN schedule_name text, ADD COLUMN scheduled_for timestamptz;
CREATE UNIQUE INDEX jobs_schedule_tick_idx ON nightcrew.jobs (schedule_name, scheduled_for)
    WHERE schedule_name IS NOT NULL;

-- Pruned jobs: the searchable columns plus the whole row as JSON (robust to later
-- columns of nightcrew.jobs). Insert-only, so it never bloats.
CREATE TABLE nightcrew.jobs_history (
    id            uuid PRIMARY KEY,
    type          text NOT NULL,
    queue         text NOT NULL,
    status        nightcrew.job_status NOT NULL,
    schedule_name text,
    created_at    timestamptz NOT NULL,
    completed_at  timestamptz,
    archived_at   timestamptz NOT NULL DEFAULT now(),
    job           jsonb NOT NULL
);

-- The jobs table churns (every job is inserted, updated a few times, then pruned): vacuum
-- it after 1 % of rows changed instead of the default 20 %, so dead tuples are reclaimed
-- in small, frequent passes and the table stays near its live size.
ALTER TABLE nightcrew.jobs SET (
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_insert_scale_factor = 0.05,
    autovacuum_analyze_scale_factor = 0.02
);
