-- Retention, one batch of reserved rate slots: read the next %(limit)s jobs holding
-- reservations, by job id after %(after)s, and delete the reservations of those no longer
-- live (finished, discarded or archived). A waiting or processing job keeps its slot: it
-- is consumed by the grant when the job is fetched again. Deleting a reservation can only
-- make its job take a fresh slot later, never let a call through sooner.
WITH scanned AS (
    SELECT DISTINCT job_id
    FROM nightcrew.limit_reservations
    WHERE job_id > %(after)s
    ORDER BY job_id
    LIMIT %(limit)s
), deleted AS (
    DELETE FROM nightcrew.limit_reservations AS r
    USING scanned AS s
    WHERE r.job_id = s.job_id
      AND NOT EXISTS (
          SELECT FROM nightcrew.jobs AS j
          WHERE j.id = r.job_id AND j.status IN ('pending', 'retrying', 'processing'))
    RETURNING 1
)
SELECT (SELECT job_id FROM scanned ORDER BY job_id DESC LIMIT 1) AS last_id,
       (SELECT count(*) FROM deleted) AS deleted,
       (SELECT count(*) FROM scanned) = %(limit)s AS more
