INSERT INTO workspace.documents (title, content) VALUES (%(title)s, %(content)s)
RETURNING id
