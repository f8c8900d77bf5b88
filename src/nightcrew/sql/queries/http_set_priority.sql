-- Change one job's priority, audited with the value before and after.
WITH target AS (
    SELECT id, priority FROM nightcrew.jobs WHERE id = %(id)s FOR NO KEY UPDATE
), changed AS (
    UPDATE nightcrew.jobs AS j
    SET priority = %(priority)s, updated_at = now()
    FROM target AS t
    WHERE j.id = t.id
    RETURNING j.id, t.priority AS before_priority, j.priority
), audit AS (
    INSERT INTO nightcrew.audit_log (actor, action, target, before, after)
    SELECT %(actor)s, 'job.priority', id::text, jsonb_build_object('priority', before_priority),
           jsonb_build_object('priority', priority)
    FROM changed
)
SELECT id FROM changed
