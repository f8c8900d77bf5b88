-- Mark one notification read (idempotent); the NOTIFY updates the user's other tabs.
UPDATE nightcrew.notifications
SET read_at = coalesce(read_at, now())
WHERE id = %(id)s AND user_id = %(user_id)s
RETURNING id, job_id, kind, title, body, created_at, read_at,
          pg_notify('nightcrew_inbox', user_id)::text AS notified
