SELECT id, name, created_at, active FROM estimating.projects WHERE id = %(id)s
