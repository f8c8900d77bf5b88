-- nightcrew 0016: the HTTP layer's key check as a function that refuses, not a query that
-- may return nothing. nightcrew.act_as_api_key(key_hash) finds the live key with this
-- SHA-256 and makes the rest of the transaction act as its user (the nightcrew_api role
-- under row-level security, nightcrew.user_id and nightcrew.is_admin set locally); with no
-- live key it raises SQLSTATE 28000 (invalid_authorization_specification), which aborts
-- the transaction. So a request may send its key check and its statements together in one
-- round trip (a pipeline): when the key was revoked meanwhile, nothing after the check runs.

CREATE FUNCTION nightcrew.act_as_api_key(key_hash bytea)
RETURNS TABLE (user_id text, is_admin boolean, key_id uuid)
LANGUAGE plpgsql VOLATILE
-- No SET clause (e.g. search_path): PostgreSQL undoes a function's local settings made
-- under one, and the role switch below must outlive the call. Every name is qualified.
AS $$
DECLARE
    k record;
BEGIN
    SELECT a.user_id, a.is_admin, a.id INTO k
    FROM nightcrew.api_keys AS a
    WHERE a.key_hash = act_as_api_key.key_hash AND a.revoked_at IS NULL;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'missing or invalid API key' USING ERRCODE = '28000';
    END IF;
    PERFORM pg_catalog.set_config('nightcrew.user_id', k.user_id, true),
            pg_catalog.set_config('nightcrew.is_admin', k.is_admin::text, true),
            pg_catalog.set_config('role', 'nightcrew_api', true);
    RETURN QUERY SELECT k.user_id, k.is_admin, k.id;
END
$$;

REVOKE ALL ON FUNCTION nightcrew.act_as_api_key(bytea) FROM PUBLIC;
