SELECT id, name, created_at FROM estimating.projects WHERE id = %(id)s
