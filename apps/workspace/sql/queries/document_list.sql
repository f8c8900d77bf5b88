SELECT d.id, d.title, d.updated_at, d.indexed_at,
       d.indexed_hash = d.content_hash AS index_current,
       e.embedded_at, coalesce(e.content_hash = d.content_hash, false) AS embedding_current
FROM workspace.documents d
LEFT JOIN workspace.embedding_model m ON true
LEFT JOIN workspace.embeddings e ON e.document_id = d.id AND e.model = m.model
ORDER BY d.updated_at DESC
LIMIT %(limit)s
