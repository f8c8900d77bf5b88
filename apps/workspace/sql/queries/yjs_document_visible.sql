SELECT id FROM workspace.documents WHERE id = %(id)s
