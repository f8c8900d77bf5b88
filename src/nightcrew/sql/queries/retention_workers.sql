-- Retention, one batch of worker rows: read the next %(limit)s workers by id after %(after)s
-- and delete those whose last heartbeat is older than %(before)s. A worker still holding a
-- live lease is alive whatever its heartbeat says, and stays.
WITH scanned AS (
    SELECT id
    FROM nightcrew.workers
    WHERE id > %(after)s
    ORDER BY id
    LIMIT %(limit)s
), deleted AS (
    DELETE FROM nightcrew.workers AS w
    USING scanned AS s
    WHERE w.id = s.id
      AND w.heartbeat_at < %(before)s::timestamptz
      AND NOT EXISTS (
          SELECT FROM nightcrew.jobs AS j
          WHERE j.status = 'processing' AND j.worker_id = w.id AND j.lease_expires_at > now())
    RETURNING 1
)
SELECT (SELECT id FROM scanned ORDER BY id DESC LIMIT 1) AS last_id,
       (SELECT count(*) FROM deleted) AS deleted,
       (SELECT count(*) FROM scanned) = %(limit)s AS more
