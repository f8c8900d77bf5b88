-- Send failed or cancelled jobs (ids, or a filter) back to pending with attempts reset;
-- each change is audited and the queue's workers are woken. A job whose dedupe key is held
-- by a live job again is skipped (it would be a duplicate).
WITH target AS (
    SELECT id, status::text AS status, attempts
    FROM nightcrew.jobs AS j
    WHERE (%(ids)s::uuid[] IS NULL OR id = ANY(%(ids)s::uuid[]))
      AND (%(status)s::text IS NULL OR status::text = %(status)s)
      AND (%(type)s::text IS NULL OR type = %(type)s)
      AND status IN ('failed', 'cancelled')
      AND (dedupe_key IS NULL OR NOT EXISTS (
          SELECT FROM nightcrew.jobs AS live
          WHERE live.dedupe_key = j.dedupe_key
            AND live.status IN ('pending', 'processing', 'retrying')))
    ORDER BY id
    LIMIT %(limit)s
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
    RETURNING j.id, j.queue, t.status AS before_status, t.attempts AS before_attempts
), audit AS (
    INSERT INTO nightcrew.audit_log (actor, action, target, before, after)
    SELECT %(actor)s, 'job.retry', id::text,
           jsonb_build_object('status', before_status, 'attempts', before_attempts),
           jsonb_build_object('status', 'pending', 'attempts', 0)
    FROM changed
), woken AS (
    SELECT pg_notify('nightcrew_jobs', queue)::text FROM (SELECT DISTINCT queue FROM changed) AS q
)
SELECT id, (SELECT count(*) FROM woken) AS woken FROM changed ORDER BY id
