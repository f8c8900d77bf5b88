-- The one statement that changes jobs' priority (caller: lifecycle/control.py), in any
-- state, as the connection's role sees them; with an actor, audited with the value before
-- and after. One row per given id: 'done', or 'not_found' (unknown or not visible).
WITH target AS (
    SELECT id, priority
    FROM nightcrew.jobs
    WHERE id = ANY(%(ids)s::uuid[])
    ORDER BY id
    FOR NO KEY UPDATE
), changed AS (
    UPDATE nightcrew.jobs AS j
    SET priority = %(priority)s::int, updated_at = now()
    FROM target AS t
    WHERE j.id = t.id
    RETURNING j.id, t.priority AS before_priority, j.priority, j.status::text AS status
), audit AS (
    INSERT INTO nightcrew.audit_log (actor, action, target, before, after)
    SELECT %(actor)s::text, 'job.priority', id::text,
           jsonb_build_object('priority', before_priority), jsonb_build_object('priority', priority)
    FROM changed
    WHERE %(actor)s::text IS NOT NULL
)
SELECT id, 'done' AS outcome, status FROM changed
UNION ALL
SELECT DISTINCT asked.id, 'not_found', NULL
FROM unnest(%(ids)s::uuid[]) AS asked(id)
WHERE asked.id NOT IN (SELECT id FROM changed)
ORDER BY id
