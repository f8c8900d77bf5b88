DELETE FROM workspace.documents WHERE id = %(id)s RETURNING id
