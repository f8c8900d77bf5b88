-- Record an App's job types and their defaults for nightcrew.enqueue() in SQL. Rows that
-- did not change are not rewritten, so an App's start costs one index probe per type.
INSERT INTO nightcrew.job_types AS t (
    type, queue, priority, max_attempts, timeout_seconds, public, notify
)
SELECT * FROM unnest(
    %(types)s::text[], %(queues)s::text[], %(priorities)s::integer[],
    %(max_attempts)s::integer[], %(timeouts)s::double precision[], %(publics)s::boolean[],
    %(notifies)s::jsonb[]
)
ON CONFLICT (type) DO UPDATE SET
    queue = EXCLUDED.queue, priority = EXCLUDED.priority,
    max_attempts = EXCLUDED.max_attempts, timeout_seconds = EXCLUDED.timeout_seconds,
    public = EXCLUDED.public, notify = EXCLUDED.notify, updated_at = now()
WHERE (t.queue, t.priority, t.max_attempts, t.timeout_seconds, t.public, t.notify)
      IS DISTINCT FROM (EXCLUDED.queue, EXCLUDED.priority, EXCLUDED.max_attempts,
                        EXCLUDED.timeout_seconds, EXCLUDED.public, EXCLUDED.notify)
