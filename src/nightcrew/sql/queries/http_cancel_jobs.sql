-- Cancel the given jobs (ids) or those matching a filter, each audited. Waiting jobs stop at
-- once; running ones are flagged and their worker is told (as cancel_job does).
WITH target AS (
    SELECT id, status::text AS status
    FROM nightcrew.jobs
    WHERE (%(ids)s::uuid[] IS NULL OR id = ANY(%(ids)s::uuid[]))
      AND (%(status)s::text IS NULL OR status::text = %(status)s)
      AND (%(type)s::text IS NULL OR type = %(type)s)
      AND status IN ('pending', 'retrying', 'processing')
      AND NOT cancel_requested
    ORDER BY id
    LIMIT %(limit)s
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
    SELECT %(actor)s, 'job.cancel', id::text, jsonb_build_object('status', before_status),
           jsonb_build_object('status', status, 'cancel_requested', cancel_requested)
    FROM changed
)
SELECT id FROM changed ORDER BY id
