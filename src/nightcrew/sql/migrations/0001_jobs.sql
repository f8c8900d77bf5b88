-- nightcrew 0001: the jobs table, its states and the indexes the lifecycle queries use.

CREATE TYPE nightcrew.job_status AS ENUM (
    'pending', 'processing', 'retrying', 'completed', 'failed', 'cancelled'
);

CREATE TABLE nightcrew.jobs (
    id               uuid PRIMARY KEY,
    type             text NOT NULL CHECK (type <> ''),
    queue            text NOT NULL DEFAULT 'default' CHECK (queue <> ''),
    payload          jsonb NOT NULL DEFAULT '{}'::jsonb,
    status           nightcrew.job_status NOT NULL DEFAULT 'pending',
    priority         integer NOT NULL DEFAULT 0,
    run_at           timestamptz NOT NULL DEFAULT now(),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts     integer NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    timeout_seconds  double precision CHECK (timeout_seconds > 0),
    progress         real NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    stage            text,
    metrics          jsonb NOT NULL DEFAULT '{}'::jsonb,
    checkpoint       jsonb,
    result           jsonb,
    error            text,
    errors           jsonb NOT NULL DEFAULT '[]'::jsonb,
    dedupe_key       text,
    user_id          text,
    cancel_requested boolean NOT NULL DEFAULT false,
    worker_id        text,
    lease_expires_at timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    completed_at     timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- Fetch: only runnable rows are indexed, so the index stays small however much history
-- the table keeps; ordered the way the fetch query reads it.
CREATE INDEX jobs_fetch_idx ON nightcrew.jobs (queue, priority DESC, run_at)
    WHERE status IN ('pending', 'retrying');

-- Dedupe: at most one live job per key. Enqueue relies on this index with ON CONFLICT,
-- so two racing enqueues can never both insert.
CREATE UNIQUE INDEX jobs_dedupe_idx ON nightcrew.jobs (dedupe_key)
    WHERE dedupe_key IS NOT NULL AND status IN ('pending', 'processing', 'retrying');

-- Rescue: leases that ran out.
CREATE INDEX jobs_lease_idx ON nightcrew.jobs (lease_expires_at) WHERE status = 'processing';

-- Ids are time-ordered (UUIDv7), so the primary key doubles as the newest-first listing index.
