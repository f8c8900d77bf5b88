SELECT user_id, role, added_at FROM estimating.project_members
WHERE project_id = %(project_id)s
ORDER BY added_at, user_id
