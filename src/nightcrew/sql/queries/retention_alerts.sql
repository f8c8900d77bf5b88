-- Retention, one batch of alerts: read the next %(limit)s alerts by primary key after
-- %(after)s and delete the resolved ones resolved before %(before)s (open alerts stay). An
-- alert resolves after it opens and ids grow with opened_at, so there is no "more" once the
-- walk passed the cut-off.
WITH scanned AS (
    SELECT id, opened_at
    FROM nightcrew.alerts
    WHERE id > %(after)s
    ORDER BY id
    LIMIT %(limit)s
), deleted AS (
    DELETE FROM nightcrew.alerts AS a
    USING scanned AS s
    WHERE a.id = s.id AND a.status = 'resolved' AND a.resolved_at < %(before)s::timestamptz
    RETURNING 1
), last AS (
    SELECT id, opened_at FROM scanned ORDER BY id DESC LIMIT 1
)
SELECT (SELECT id FROM last) AS last_id,
       (SELECT count(*) FROM deleted) AS deleted,
       coalesce((SELECT count(*) FROM scanned) = %(limit)s
                AND (SELECT opened_at FROM last) < %(before)s::timestamptz, false) AS more
