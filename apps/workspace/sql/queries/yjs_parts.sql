-- The newest snapshot (compressed) then every update not merged into one yet, in order.
(SELECT 0 AS kind, id, state AS data FROM workspace.doc_snapshots
 WHERE document_id = %(id)s ORDER BY id DESC LIMIT 1)
UNION ALL
(SELECT 1, id, "update" FROM workspace.doc_updates WHERE document_id = %(id)s ORDER BY id)
ORDER BY kind, id
