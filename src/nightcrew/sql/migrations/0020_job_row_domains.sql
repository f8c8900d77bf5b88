-- nightcrew 0020: the rules of a job row move from the table's nine CHECK constraints to
-- nine domains, one per column, with the same rules under the same constraint names.
--
-- Why: PostgreSQL reads every CHECK of a table back from its stored node tree and plans it
-- again for each INSERT or UPDATE statement (ExecRelCheck builds them per executor). For
-- nightcrew.jobs that was ~155,000 instructions a statement, 40 % of a single-row job
-- INSERT (callgrind: 381k -> 226k), paid by every enqueue, fetch, save and completion. A
-- domain's checks are planned once per session and cached with the type, and are checked
-- only where a statement assigns the column; a bulk row costs the same as before.
--
-- What does not change: every value a CHECK refused is refused (SQLSTATE 23514, the same
-- constraint name; the message names the domain, nightcrew.jobs_<column>), on INSERT,
-- UPDATE and COPY, by every role; a NULL passes where the column allows one; the rules'
-- operators are bound when they are created, not looked up by the writer.
--
-- How, without rewriting or scanning jobs: the columns change to domains that have no
-- constraint yet (a binary-compatible relabel: the table is not rewritten; the four
-- partial indexes naming these columns, fetch and dedupe, are rebuilt from the waiting and
-- live jobs they hold, so the backlog decides how long that takes), then each
-- domain gets its rule NOT VALID, which skips only the scan of existing rows (the table's
-- own CHECKs held them to the same rules until this transaction dropped them). New and
-- updated values are checked from the next statement on. ALTER TABLE still takes a brief
-- ACCESS EXCLUSIVE lock on jobs (catalog work only).

CREATE DOMAIN nightcrew.jobs_type AS text;
CREATE DOMAIN nightcrew.jobs_queue AS text;
CREATE DOMAIN nightcrew.jobs_attempts AS integer;
CREATE DOMAIN nightcrew.jobs_max_attempts AS integer;
CREATE DOMAIN nightcrew.jobs_timeout_seconds AS double precision;
CREATE DOMAIN nightcrew.jobs_progress AS real;
CREATE DOMAIN nightcrew.jobs_pending_parents AS integer;
CREATE DOMAIN nightcrew.jobs_dedupe_scope AS text;
CREATE DOMAIN nightcrew.jobs_on_parent_failure AS text;

ALTER TABLE nightcrew.jobs
    DROP CONSTRAINT jobs_type_check,
    DROP CONSTRAINT jobs_queue_check,
    DROP CONSTRAINT jobs_attempts_check,
    DROP CONSTRAINT jobs_max_attempts_check,
    DROP CONSTRAINT jobs_timeout_seconds_check,
    DROP CONSTRAINT jobs_progress_check,
    DROP CONSTRAINT jobs_pending_parents_check,
    DROP CONSTRAINT jobs_dedupe_scope_check,
    DROP CONSTRAINT jobs_on_parent_failure_check,
    ALTER COLUMN type TYPE nightcrew.jobs_type,
    ALTER COLUMN queue TYPE nightcrew.jobs_queue,
    ALTER COLUMN attempts TYPE nightcrew.jobs_attempts,
    ALTER COLUMN max_attempts TYPE nightcrew.jobs_max_attempts,
    ALTER COLUMN timeout_seconds TYPE nightcrew.jobs_timeout_seconds,
    ALTER COLUMN progress TYPE nightcrew.jobs_progress,
    ALTER COLUMN pending_parents TYPE nightcrew.jobs_pending_parents,
    ALTER COLUMN dedupe_scope TYPE nightcrew.jobs_dedupe_scope,
    ALTER COLUMN on_parent_failure TYPE nightcrew.jobs_on_parent_failure;

ALTER DOMAIN nightcrew.jobs_type
    ADD CONSTRAINT jobs_type_check CHECK (VALUE <> '') NOT VALID;
ALTER DOMAIN nightcrew.jobs_queue
    ADD CONSTRAINT jobs_queue_check CHECK (VALUE <> '') NOT VALID;
ALTER DOMAIN nightcrew.jobs_attempts
    ADD CONSTRAINT jobs_attempts_check CHECK (VALUE >= 0) NOT VALID;
ALTER DOMAIN nightcrew.jobs_max_attempts
    ADD CONSTRAINT jobs_max_attempts_check CHECK (VALUE >= 1) NOT VALID;
ALTER DOMAIN nightcrew.jobs_timeout_seconds
    ADD CONSTRAINT jobs_timeout_seconds_check CHECK (VALUE > 0) NOT VALID;
ALTER DOMAIN nightcrew.jobs_progress
    ADD CONSTRAINT jobs_progress_check CHECK (VALUE BETWEEN 0 AND 100) NOT VALID;
ALTER DOMAIN nightcrew.jobs_pending_parents
    ADD CONSTRAINT jobs_pending_parents_check CHECK (VALUE >= 0) NOT VALID;
ALTER DOMAIN nightcrew.jobs_dedupe_scope
    ADD CONSTRAINT jobs_dedupe_scope_check CHECK (VALUE IN ('active', 'queued')) NOT VALID;
ALTER DOMAIN nightcrew.jobs_on_parent_failure
    ADD CONSTRAINT jobs_on_parent_failure_check CHECK (VALUE IN ('cancel', 'run')) NOT VALID;
