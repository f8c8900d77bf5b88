-- Retention, one batch of in-app notifications: read the next %(limit)s rows by primary key
-- after %(after)s; delete the read ones created before %(read_before)s and the unread ones
-- created before %(unread_before)s (NULL: unread ones are kept). Ids grow with created_at,
-- so there is no "more" once the walk passed %(read_before)s (the later cut-off).
WITH scanned AS (
    SELECT id, created_at
    FROM nightcrew.notifications
    WHERE id > %(after)s
    ORDER BY id
    LIMIT %(limit)s
), deleted AS (
    DELETE FROM nightcrew.notifications AS n
    USING scanned AS s
    WHERE n.id = s.id
      AND n.created_at < CASE WHEN n.read_at IS NULL THEN %(unread_before)s::timestamptz
                              ELSE %(read_before)s::timestamptz END
    RETURNING 1
), last AS (
    SELECT id, created_at FROM scanned ORDER BY id DESC LIMIT 1
)
SELECT (SELECT id FROM last) AS last_id,
       (SELECT count(*) FROM deleted) AS deleted,
       coalesce((SELECT count(*) FROM scanned) = %(limit)s
                AND (SELECT created_at FROM last) < %(read_before)s::timestamptz, false) AS more
