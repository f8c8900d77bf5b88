UPDATE nightcrew.workers SET heartbeat_at = now() WHERE id = %(id)s
