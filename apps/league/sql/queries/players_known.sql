SELECT id FROM league.players WHERE id = ANY(%(ids)s::integer[])
