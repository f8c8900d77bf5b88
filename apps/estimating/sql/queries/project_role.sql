SELECT role FROM estimating.project_members
WHERE project_id = %(project_id)s AND user_id = %(user_id)s
