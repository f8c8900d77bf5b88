SELECT d.id, d.owner, d.title, d.content, encode(d.content_hash, 'hex') AS content_hash,
       d.created_at, d.updated_at, d.indexed_at,
       d.indexed_hash = d.content_hash AS index_current,
       e.embedded_at, e.model AS embedding_model, e.dimension AS embedding_dimension,
       coalesce(e.content_hash = d.content_hash, false) AS embedding_current
FROM workspace.documents d
LEFT JOIN workspace.embedding_model m ON true
LEFT JOIN workspace.embeddings e ON e.document_id = d.id AND e.model = m.model
WHERE d.id = %(id)s
