-- Failed jobs to discard (ids, or all when ids is NULL, up to limit) that the acting user
-- may see, locked and audited; dash_discard_delete then removes them in the same transaction.
WITH target AS (
    SELECT id, type, error
    FROM nightcrew.jobs
    WHERE (%(ids)s::uuid[] IS NULL OR id = ANY(%(ids)s::uuid[]))
      AND status = 'failed'
    ORDER BY id
    LIMIT %(limit)s
    FOR UPDATE
), audit AS (
    INSERT INTO nightcrew.audit_log (actor, action, target, before, after)
    SELECT %(actor)s, 'job.discard', id::text,
           jsonb_build_object('status', 'failed', 'type', type, 'error', error), NULL
    FROM target
)
SELECT id FROM target ORDER BY id
