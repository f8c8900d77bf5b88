-- ctx.limit() block exit: give its concurrency slot back.
DELETE FROM nightcrew.limit_slots WHERE id = %(slot_id)s
