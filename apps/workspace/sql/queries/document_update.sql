UPDATE workspace.documents
SET title = coalesce(%(title)s, title), content = coalesce(%(content)s, content)
WHERE id = %(id)s
RETURNING id
