SELECT * FROM nightcrew.jobs WHERE id = %(id)s
