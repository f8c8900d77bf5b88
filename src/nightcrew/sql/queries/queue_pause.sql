-- Pause a queue cluster-wide (fetches skip it from the next one on); workers hear of it
-- on nightcrew_queues. Returns a row when the queue was not paused yet.
WITH paused AS (
    INSERT INTO nightcrew.queue_pauses (queue, paused_by)
    VALUES (%(queue)s, %(by)s)
    ON CONFLICT (queue) DO NOTHING
    RETURNING queue
)
SELECT queue, pg_notify('nightcrew_queues', 'pause:' || queue) FROM paused
