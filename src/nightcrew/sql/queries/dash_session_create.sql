-- Log in: a new dashboard session for the live key with this hash (no row: unknown or
-- revoked key). The key's ended sessions (expired or logged out) are cleared on the way.
WITH k AS (
    SELECT id, user_id, is_admin
    FROM nightcrew.api_keys
    WHERE key_hash = %(key_hash)s AND revoked_at IS NULL
), cleared AS (
    DELETE FROM nightcrew.dashboard_sessions AS s
    USING k
    WHERE s.key_id = k.id AND (s.expires_at <= now() OR s.revoked_at IS NOT NULL)
)
INSERT INTO nightcrew.dashboard_sessions (id_hash, key_id, user_id, is_admin, expires_at)
SELECT %(id_hash)s, id, user_id, is_admin, now() + make_interval(secs => %(seconds)s)
FROM k
RETURNING user_id, is_admin, expires_at
