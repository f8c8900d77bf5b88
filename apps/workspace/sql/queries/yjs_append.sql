INSERT INTO workspace.doc_updates (document_id, owner, "update")
SELECT id, owner, %(update)s FROM workspace.documents WHERE id = %(id)s
RETURNING id
