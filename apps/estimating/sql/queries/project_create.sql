-- Create a project owned by the acting API user (no row: the id is taken).
SELECT id, name, created_at, active FROM estimating.create_owned_project(%(id)s, %(name)s)
