SELECT count(*) FILTER (WHERE e.content_hash IS DISTINCT FROM d.content_hash) AS missing,
       count(*) AS total
FROM workspace.documents d
LEFT JOIN workspace.embeddings e ON e.document_id = d.id AND e.model = %(model)s
