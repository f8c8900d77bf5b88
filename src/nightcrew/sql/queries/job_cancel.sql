-- The one statement that cancels jobs (caller: lifecycle/control.py). Targets the given ids,
-- or the jobs matching a filter (status, type), up to limit, as the connection's role sees
-- them (row-level security). Waiting jobs stop at once; a running job is flagged and its
-- worker told. With an actor, each change is audited in this statement.
-- One row per changed job ('done') and, for given ids left alone, why: 'not_found'
-- (unknown or not visible) or 'wrong_state' (finished, or its cancel already requested).
WITH target AS (
    SELECT id, status::text AS status
    FROM nightcrew.jobs
    WHERE (%(ids)s::uuid[] IS NULL OR id = ANY(%(ids)s::uuid[]))
      AND (%(status)s::text IS NULL OR status::text = %(status)s::text)
      AND (%(type)s::text IS NULL OR type = %(type)s::text)
      AND status IN ('pending', 'retrying', 'processing')
      AND NOT cancel_requested
    ORDER BY id
    LIMIT %(limit)s::bigint
    FOR NO KEY UPDATE
), changed AS (
    UPDATE nightcrew.jobs AS j
    SET status = CASE WHEN j.status = 'processing' THEN j.status
                      ELSE 'cancelled'::nightcrew.job_status END,
        cancel_requested = (j.status = 'processing'),
        completed_at = CASE WHEN j.status = 'processing' THEN j.completed_at ELSE now() END,
        updated_at = now()
    FROM target AS t
    WHERE j.id = t.id
    RETURNING j.id, t.status AS before_status, j.status::text AS status, j.cancel_requested,
              pg_notify('nightcrew_cancel', j.id::text)::text AS notified
), audit AS (
    INSERT INTO nightcrew.audit_log (actor, action, target, before, after)
    SELECT %(actor)s::text, 'job.cancel', id::text, jsonb_build_object('status', before_status),
           jsonb_build_object('status', status, 'cancel_requested', cancel_requested)
    FROM changed
    WHERE %(actor)s::text IS NOT NULL
), left_alone AS (
    SELECT DISTINCT asked.id, j.status::text AS status
    FROM unnest(%(ids)s::uuid[]) AS asked(id)
    LEFT JOIN nightcrew.jobs AS j ON j.id = asked.id
    WHERE asked.id NOT IN (SELECT id FROM changed)
)
SELECT id, 'done' AS outcome, before_status AS status FROM changed
UNION ALL
SELECT id, CASE WHEN status IS NULL THEN 'not_found' ELSE 'wrong_state' END, status
FROM left_alone
ORDER BY id
