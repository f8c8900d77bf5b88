-- Log out: end the dashboard session with this id hash (a stolen cookie stops working).
UPDATE nightcrew.dashboard_sessions
SET revoked_at = now()
WHERE id_hash = %(id_hash)s AND revoked_at IS NULL
