SELECT title, content, content_hash FROM workspace.documents WHERE id = %(id)s
