-- Revoke a key by id or by its printed prefix; audited in the same statement.
WITH revoked AS (
    UPDATE nightcrew.api_keys
    SET revoked_at = now()
    WHERE (id::text = %(key)s OR prefix = %(key)s) AND revoked_at IS NULL
    RETURNING id, user_id, is_admin, prefix, created_at, revoked_at
), audit AS (
    INSERT INTO nightcrew.audit_log (actor, action, target, before, after)
    SELECT %(actor)s, 'key.revoke', id::text, jsonb_build_object('revoked', false),
           jsonb_build_object('revoked', true, 'user_id', user_id, 'prefix', prefix)
    FROM revoked
)
SELECT * FROM revoked
