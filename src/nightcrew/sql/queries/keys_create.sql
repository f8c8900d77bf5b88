-- Store a new API key (its sha256 only) and audit the creation in the same statement.
WITH created AS (
    INSERT INTO nightcrew.api_keys (id, user_id, is_admin, key_hash, prefix)
    VALUES (%(id)s, %(user_id)s, %(is_admin)s, %(key_hash)s, %(prefix)s)
    RETURNING id, user_id, is_admin, prefix, created_at, revoked_at
), audit AS (
    INSERT INTO nightcrew.audit_log (actor, action, target, before, after)
    SELECT %(actor)s, 'key.create', id::text, NULL,
           jsonb_build_object('user_id', user_id, 'is_admin', is_admin, 'prefix', prefix)
    FROM created
)
SELECT * FROM created
