-- One user's notification preferences (none stored: no row). Under row-level security
-- over the API; as the owner when a notification is delivered.
SELECT email, webhook, on_completed, on_failed, updated_at
FROM nightcrew.notification_prefs
WHERE user_id = %(user_id)s
