-- Rename a project and (when given) set its active flag; under row-level security only its
-- owners and editors may update.
UPDATE estimating.projects SET name = %(name)s, active = coalesce(%(active)s, active)
WHERE id = %(id)s
RETURNING id, name, created_at, active
