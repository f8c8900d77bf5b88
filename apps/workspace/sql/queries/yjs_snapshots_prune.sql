-- Keep the newest %(keep)s snapshots of the document.
DELETE FROM workspace.doc_snapshots
WHERE document_id = %(id)s
  AND id NOT IN (SELECT id FROM workspace.doc_snapshots WHERE document_id = %(id)s
                 ORDER BY id DESC LIMIT %(keep)s)
