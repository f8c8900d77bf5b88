DELETE FROM nightcrew.workers WHERE id = %(id)s
