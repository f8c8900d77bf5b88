-- The badge: unread notifications of the user (answered from notifications_unread_idx).
SELECT count(*)::int AS unread, (SELECT max(id) FROM nightcrew.notifications
                                 WHERE user_id = %(user_id)s) AS latest_id
FROM nightcrew.notifications
WHERE user_id = %(user_id)s AND read_at IS NULL
