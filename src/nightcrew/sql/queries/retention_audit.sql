-- Retention, one batch of the audit log: read the next %(limit)s entries by primary key after
-- %(after)s and delete those written before %(before)s. Ids grow with "at", so there is no
-- "more" once the walk passed the cut-off.
WITH scanned AS (
    SELECT id, at
    FROM nightcrew.audit_log
    WHERE id > %(after)s
    ORDER BY id
    LIMIT %(limit)s
), deleted AS (
    DELETE FROM nightcrew.audit_log AS a
    USING scanned AS s
    WHERE a.id = s.id AND a.at < %(before)s::timestamptz
    RETURNING 1
), last AS (
    SELECT id, at FROM scanned ORDER BY id DESC LIMIT 1
)
SELECT (SELECT id FROM last) AS last_id,
       (SELECT count(*) FROM deleted) AS deleted,
       coalesce((SELECT count(*) FROM scanned) = %(limit)s
                AND (SELECT at FROM last) < %(before)s::timestamptz, false) AS more
