-- Store a user's notification preferences (row-level security: only their own row).
INSERT INTO nightcrew.notification_prefs AS p (user_id, email, webhook, on_completed, on_failed)
VALUES (%(user_id)s, %(email)s, %(webhook)s, %(on_completed)s::text[], %(on_failed)s::text[])
ON CONFLICT (user_id) DO UPDATE SET
    email = EXCLUDED.email,
    webhook = EXCLUDED.webhook,
    on_completed = EXCLUDED.on_completed,
    on_failed = EXCLUDED.on_failed,
    updated_at = now()
RETURNING email, webhook, on_completed, on_failed, updated_at
