INSERT INTO workspace.doc_snapshots (document_id, owner, state, updates, raw_bytes)
SELECT id, owner, %(state)s, %(updates)s, %(raw_bytes)s
FROM workspace.documents WHERE id = %(id)s
RETURNING id
