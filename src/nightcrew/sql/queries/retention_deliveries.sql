-- Retention, one batch of notification deliveries: read the next %(limit)s rows by primary
-- key after %(after)s and delete those last touched (created or attempted) before
-- %(before)s, so a delivery still being retried stays. Ids grow with created_at, so there is
-- no "more" once the walk passed the cut-off.
WITH scanned AS (
    SELECT id, created_at
    FROM nightcrew.deliveries
    WHERE id > %(after)s
    ORDER BY id
    LIMIT %(limit)s
), deleted AS (
    DELETE FROM nightcrew.deliveries AS d
    USING scanned AS s
    WHERE d.id = s.id AND d.updated_at < %(before)s::timestamptz
    RETURNING 1
), last AS (
    SELECT id, created_at FROM scanned ORDER BY id DESC LIMIT 1
)
SELECT (SELECT id FROM last) AS last_id,
       (SELECT count(*) FROM deleted) AS deleted,
       coalesce((SELECT count(*) FROM scanned) = %(limit)s
                AND (SELECT created_at FROM last) < %(before)s::timestamptz, false) AS more
