-- An in-app notification; the NOTIFY wakes the user's live badge streams.
INSERT INTO nightcrew.notifications (user_id, job_id, kind, title, body)
VALUES (%(user_id)s, %(job_id)s, %(kind)s, %(title)s, %(body)s)
RETURNING id, pg_notify('nightcrew_inbox', user_id)::text AS notified
