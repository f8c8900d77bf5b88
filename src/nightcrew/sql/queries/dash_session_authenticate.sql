-- Find a live dashboard session (not logged out, not expired, its key not revoked) and,
-- in the same statement, make the rest of the transaction act as its user: the
-- nightcrew_api role under row-level security. No row: nothing is set.
SELECT s.user_id, s.is_admin, s.key_id,
       set_config('nightcrew.user_id', s.user_id, true) AS acting_user,
       set_config('nightcrew.is_admin', s.is_admin::text, true) AS acting_admin,
       set_config('role', 'nightcrew_api', true) AS acting_role
FROM nightcrew.dashboard_sessions AS s
JOIN nightcrew.api_keys AS k ON k.id = s.key_id AND k.revoked_at IS NULL
WHERE s.id_hash = %(id_hash)s AND s.revoked_at IS NULL AND s.expires_at > now()
