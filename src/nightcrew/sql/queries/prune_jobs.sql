-- Prune one batch: walk the primary key (ids are time-ordered) below the cut-off id, and
-- move finished jobs past their retention to jobs_history (or just delete them). Each
-- batch is one short transaction touching only finished rows, which no worker locks.
-- Their dependency edges (as parents) are removed with them.
WITH scanned AS (
    SELECT id
    FROM nightcrew.jobs
    WHERE id > %(after)s AND id < %(upper)s
    ORDER BY id
    LIMIT %(limit)s
), doomed AS (
    SELECT j.id
    FROM nightcrew.jobs AS j
    JOIN scanned USING (id)
    WHERE (j.status IN ('completed', 'cancelled') AND j.completed_at < %(completed_before)s)
       OR (j.status = 'failed' AND j.completed_at < %(failed_before)s)
    FOR UPDATE OF j SKIP LOCKED
), moved AS (
    DELETE FROM nightcrew.jobs AS j
    USING doomed
    WHERE j.id = doomed.id
    RETURNING j.*
), unlinked AS (
    -- A finished parent's edges were resolved when it ended: they go with it.
    DELETE FROM nightcrew.job_dependencies AS e
    USING moved
    WHERE e.parent_id = moved.id
), archived AS (
    INSERT INTO nightcrew.jobs_history (
        id, type, queue, status, schedule_name, created_at, completed_at, job
    )
    SELECT id, type, queue, status, schedule_name, created_at, completed_at, to_jsonb(moved)
    FROM moved
    WHERE %(archive)s
    ON CONFLICT (id) DO NOTHING
)
SELECT (SELECT id FROM scanned ORDER BY id DESC LIMIT 1) AS last_id,
       (SELECT count(*) FROM moved) AS pruned
