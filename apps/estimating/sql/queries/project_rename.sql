-- Rename a project (under row-level security: only its owners and editors may update).
UPDATE estimating.projects SET name = %(name)s WHERE id = %(id)s
RETURNING id, name, created_at
