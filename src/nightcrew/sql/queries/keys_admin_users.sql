-- The users holding a live admin key, each once.
SELECT DISTINCT user_id FROM nightcrew.api_keys
WHERE is_admin AND revoked_at IS NULL
ORDER BY user_id
