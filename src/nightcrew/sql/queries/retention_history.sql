-- Retention, one batch of archived jobs in the default partition of jobs_history (month
-- partitions are dropped whole, see retention_history_partitions): read the next %(limit)s
-- rows by primary key after %(after)s and below %(upper)s, and delete those archived before
-- %(before)s. A job is archived after it was created and ids are time-ordered (UUIDv7), so
-- %(upper)s, the first id of the cut-off's millisecond, bounds the walk.
WITH scanned AS (
    SELECT id
    FROM nightcrew_history.jobs_history_default
    WHERE id > %(after)s AND id < %(upper)s
    ORDER BY id
    LIMIT %(limit)s
), deleted AS (
    DELETE FROM nightcrew_history.jobs_history_default AS h
    USING scanned AS s
    WHERE h.id = s.id AND h.archived_at < %(before)s::timestamptz
    RETURNING 1
)
SELECT (SELECT id FROM scanned ORDER BY id DESC LIMIT 1) AS last_id,
       (SELECT count(*) FROM deleted) AS deleted,
       (SELECT count(*) FROM scanned) = %(limit)s AS more
