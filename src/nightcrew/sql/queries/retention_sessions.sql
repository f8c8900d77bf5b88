-- Retention, one batch of dashboard sessions: read the next %(limit)s sessions by id hash
-- after %(after)s and delete those that ended before %(before)s: logged out, expired, or
-- opened with an API key since revoked (a revoked key is never live again). A session
-- still live by the database's own clock stays, whatever the cut-off says.
WITH scanned AS (
    SELECT id_hash
    FROM nightcrew.dashboard_sessions
    WHERE id_hash > %(after)s
    ORDER BY id_hash
    LIMIT %(limit)s
), deleted AS (
    DELETE FROM nightcrew.dashboard_sessions AS d
    USING scanned AS s, nightcrew.api_keys AS k
    WHERE d.id_hash = s.id_hash AND k.id = d.key_id
      AND least(d.expires_at, d.revoked_at, k.revoked_at) < %(before)s::timestamptz
      AND (d.expires_at <= now() OR d.revoked_at IS NOT NULL OR k.revoked_at IS NOT NULL)
    RETURNING 1
)
SELECT (SELECT id_hash FROM scanned ORDER BY id_hash DESC LIMIT 1) AS last_id,
       (SELECT count(*) FROM deleted) AS deleted,
       (SELECT count(*) FROM scanned) = %(limit)s AS more
