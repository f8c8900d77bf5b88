-- Find the key's user and, in the same statement, make the rest of the transaction act as
-- that user: the nightcrew_api role under row-level security. No row: nothing is set.
SELECT k.user_id, k.is_admin, k.id AS key_id,
       set_config('nightcrew.user_id', k.user_id, true) AS acting_user,
       set_config('nightcrew.is_admin', k.is_admin::text, true) AS acting_admin,
       set_config('role', 'nightcrew_api', true) AS acting_role
FROM nightcrew.api_keys AS k
WHERE k.key_hash = %(key_hash)s AND k.revoked_at IS NULL
