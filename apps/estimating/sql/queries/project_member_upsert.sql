-- Add a member to a project, or change the role of one.
INSERT INTO estimating.project_members (project_id, user_id, role)
VALUES (%(project_id)s, %(user_id)s, %(role)s)
ON CONFLICT (project_id, user_id) DO UPDATE SET role = excluded.role
RETURNING project_id, user_id, role, added_at
