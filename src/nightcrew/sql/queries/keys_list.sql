SELECT id, user_id, is_admin, prefix, created_at, revoked_at
FROM nightcrew.api_keys
ORDER BY created_at, id
