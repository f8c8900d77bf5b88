-- The one statement that retries jobs (caller: lifecycle/control.py): failed or cancelled
-- jobs (the given ids, or those matching a filter, up to limit, as the connection's role
-- sees them) go back to pending now with attempts reset; the checkpoint is kept so a job
-- resumes where it stopped. A job whose dedupe key a live job holds again is left alone
-- (retrying it would duplicate that job). With an actor, each change is audited here; the
-- queues of the changed jobs are woken.
-- One row per changed job ('done') and, for given ids left alone, why: 'not_found',
-- 'dedupe_held' or 'wrong_state'.
WITH target AS (
    SELECT id, status::text AS status, attempts
    FROM nightcrew.jobs AS j
    WHERE (%(ids)s::uuid[] IS NULL OR id = ANY(%(ids)s::uuid[]))
      AND (%(status)s::text IS NULL OR status::text = %(status)s::text)
      AND (%(type)s::text IS NULL OR type = %(type)s::text)
      AND status IN ('failed', 'cancelled')
      AND (dedupe_key IS NULL OR NOT EXISTS (
          SELECT FROM nightcrew.jobs AS live
          WHERE live.dedupe_key = j.dedupe_key
            AND live.status IN ('pending', 'processing', 'retrying')))
    ORDER BY id
    LIMIT %(limit)s::bigint
    FOR NO KEY UPDATE
), changed AS (
    UPDATE nightcrew.jobs AS j
    SET status = 'pending',
        attempts = 0,
        run_at = now(),
        completed_at = NULL,
        cancel_requested = false,
        updated_at = now()
    FROM target AS t
    WHERE j.id = t.id
    -- Wakes the queue's workers (one notification per queue: identical ones are merged).
    RETURNING j.id, t.status AS before_status, t.attempts AS before_attempts,
              pg_notify('nightcrew_jobs', j.queue)::text AS notified
), audit AS (
    INSERT INTO nightcrew.audit_log (actor, action, target, before, after)
    SELECT %(actor)s::text, 'job.retry', id::text,
           jsonb_build_object('status', before_status, 'attempts', before_attempts),
           jsonb_build_object('status', 'pending', 'attempts', 0)
    FROM changed
    WHERE %(actor)s::text IS NOT NULL
), left_alone AS (
    SELECT DISTINCT asked.id, j.status::text AS status,
           j.status IN ('failed', 'cancelled') AND EXISTS (
               SELECT FROM nightcrew.jobs AS live
               WHERE live.dedupe_key = j.dedupe_key
                 AND live.status IN ('pending', 'processing', 'retrying')) AS held
    FROM unnest(%(ids)s::uuid[]) AS asked(id)
    LEFT JOIN nightcrew.jobs AS j ON j.id = asked.id
    WHERE asked.id NOT IN (SELECT id FROM changed)
)
SELECT id, 'done' AS outcome, before_status AS status FROM changed
UNION ALL
SELECT id, CASE WHEN status IS NULL THEN 'not_found'
                WHEN held THEN 'dedupe_held'
                ELSE 'wrong_state' END, status
FROM left_alone
ORDER BY id
