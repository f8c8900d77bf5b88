-- Insert a job enqueued without options (App.enqueue(type, payload)): due now, no dedupe
-- key, no parents, no owner; its type's defaults as parameters, every other column the
-- table's default. enqueue.plain_job builds the parameters (sent positionally, in this
-- order); no result to read. With plain_job's few checks, a sixth less client CPU per
-- 1-client enqueue than build_job and insert_job_plain.
-- Wakes the workers from this statement (RETURNING pg_notify). enqueue.ainsert_plain runs
-- it without that last line when the job commits on its own while other enqueues of the
-- process are in flight, and then sends notify_queue after the commit (see insert_job_plain).
INSERT INTO nightcrew.jobs (
    id, type, queue, payload, priority, max_attempts, timeout_seconds, notify
)
VALUES (
    %(id)s, %(type)s, %(queue)s, %(payload)s::jsonb, %(priority)s, %(max_attempts)s,
    %(timeout_seconds)s, %(notify)s::jsonb
)
RETURNING pg_notify('nightcrew_jobs', queue)
