-- Retention, one batch of archived jobs: read the next %(limit)s rows of jobs_history by
-- primary key after %(after)s and below %(upper)s, and delete those archived before
-- %(before)s. A job is archived after it was created and ids are time-ordered (UUIDv7), so
-- %(upper)s, the first id of the cut-off's millisecond, bounds the walk.
WITH scanned AS (
    SELECT id
    FROM nightcrew.jobs_history
    WHERE id > %(after)s AND id < %(upper)s
    ORDER BY id
    LIMIT %(limit)s
), deleted AS (
    DELETE FROM nightcrew.jobs_history AS h
    USING scanned AS s
    WHERE h.id = s.id AND h.archived_at < %(before)s::timestamptz
    RETURNING 1
)
SELECT (SELECT id FROM scanned ORDER BY id DESC LIMIT 1) AS last_id,
       (SELECT count(*) FROM deleted) AS deleted,
       (SELECT count(*) FROM scanned) = %(limit)s AS more
