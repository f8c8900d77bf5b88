DELETE FROM workspace.doc_updates WHERE document_id = %(id)s AND id = ANY(%(ids)s)
