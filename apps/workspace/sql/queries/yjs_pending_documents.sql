SELECT DISTINCT document_id FROM workspace.doc_updates ORDER BY document_id
