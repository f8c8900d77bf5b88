-- Retention, one batch of limit keys: read the next %(limit)s keys after %(after)s and
-- delete the idle ones with the key's leftover concurrency slots (all dead). Idle: no
-- operator override (configuration, kept until cleared), no concurrency slot held by a
-- running attempt, no reserved rate slot (reservations of finished jobs go first, see
-- retention_limit_reservations), and no activity (row written, rate slot taken or
-- reserved, concurrency slot acquired) since %(before)s, nor, by the database's own clock,
-- within the longest rate period (an hour, the code's next rate may be slower than the
-- recorded one) + the 5 %% spacing margin. Past that, a fresh row grants exactly what the
-- old one would (migration 0015: no call of its record falls in a window with a new one),
-- so a key recreated by its next grant cannot exceed its limit. Rows a grant holds are
-- skipped (SKIP LOCKED), as are rows whose state changed since the batch's snapshot (the
-- lock re-reads them).
WITH scanned AS (
    SELECT key
    FROM nightcrew.limits
    WHERE key > %(after)s
    ORDER BY key
    LIMIT %(limit)s
), idle AS (
    SELECT l.key
    FROM nightcrew.limits AS l
    WHERE l.key IN (SELECT key FROM scanned)
      AND NOT l.overridden
      AND greatest(l.updated_at, l.tat, l.recent[cardinality(l.recent)],
                   (SELECT max(s.acquired_at) FROM nightcrew.limit_slots AS s
                    WHERE s.key = l.key))
          < least(%(before)s::timestamptz,
                  now() - make_interval(secs => 1.05 * greatest(3600,
                      coalesce(l.code_rate_seconds, 0), coalesce(l.override_rate_seconds, 0))))
      AND NOT EXISTS (SELECT FROM nightcrew.limit_reservations AS r WHERE r.key = l.key)
      AND NOT EXISTS (
          SELECT FROM nightcrew.limit_slots AS s
          JOIN nightcrew.jobs AS j ON j.id = s.job_id AND j.attempts = s.attempt
                                  AND j.status = 'processing'
          WHERE s.key = l.key)
    ORDER BY l.key
    FOR UPDATE OF l SKIP LOCKED
), dead_slots AS (
    DELETE FROM nightcrew.limit_slots AS s
    USING idle AS i
    WHERE s.key = i.key
      AND NOT EXISTS (SELECT FROM nightcrew.jobs AS j
                      WHERE j.id = s.job_id AND j.attempts = s.attempt
                        AND j.status = 'processing')
), deleted AS (
    DELETE FROM nightcrew.limits AS l
    USING idle AS i
    WHERE l.key = i.key
    RETURNING 1
)
SELECT (SELECT key FROM scanned ORDER BY key DESC LIMIT 1) AS last_id,
       (SELECT count(*) FROM deleted) AS deleted,
       (SELECT count(*) FROM scanned) = %(limit)s AS more
