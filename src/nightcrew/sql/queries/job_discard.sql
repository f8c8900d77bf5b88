-- Discard, step 1 of 2 (caller: lifecycle/control.py): pick the failed jobs to discard (the
-- given ids, or all when ids is NULL, up to limit) as the connection's role sees them,
-- locked, and audit them when there is an actor; job_discard_delete then removes exactly
-- these in the same transaction. One row per picked job ('done') and, for given ids left
-- alone, why: 'not_found' (unknown or not visible) or 'wrong_state' (not failed).
WITH target AS (
    SELECT id, type, error
    FROM nightcrew.jobs
    WHERE (%(ids)s::uuid[] IS NULL OR id = ANY(%(ids)s::uuid[]))
      AND (%(type)s::text IS NULL OR type = %(type)s::text)
      AND status = 'failed'
    ORDER BY id
    LIMIT %(limit)s::bigint
    FOR UPDATE
), audit AS (
    INSERT INTO nightcrew.audit_log (actor, action, target, before, after)
    SELECT %(actor)s::text, 'job.discard', id::text,
           jsonb_build_object('status', 'failed', 'type', type, 'error', error), NULL
    FROM target
    WHERE %(actor)s::text IS NOT NULL
), left_alone AS (
    SELECT DISTINCT asked.id, j.status::text AS status
    FROM unnest(%(ids)s::uuid[]) AS asked(id)
    LEFT JOIN nightcrew.jobs AS j ON j.id = asked.id
    WHERE asked.id NOT IN (SELECT id FROM target)
)
SELECT id, 'done' AS outcome, 'failed' AS status FROM target
UNION ALL
SELECT id, CASE WHEN status IS NULL THEN 'not_found' ELSE 'wrong_state' END, status
FROM left_alone
ORDER BY id
