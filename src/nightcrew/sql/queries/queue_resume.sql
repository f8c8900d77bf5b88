-- Resume a paused queue; wakes its workers (nightcrew_jobs) so they fetch at once.
-- Returns a row when the queue was paused.
WITH resumed AS (
    DELETE FROM nightcrew.queue_pauses WHERE queue = %(queue)s RETURNING queue
)
SELECT queue, pg_notify('nightcrew_queues', 'resume:' || queue),
       pg_notify('nightcrew_jobs', queue)
FROM resumed
