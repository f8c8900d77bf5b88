-- {dim} is the searched model's dimension, written into the text so that the partial
-- HNSW index of that size (embeddings_hnsw_<dim>) applies.
SELECT d.id, d.title, 1 - (e.embedding::vector({dim}) <=> %(vector)s::vector({dim})) AS score
FROM workspace.embeddings e
JOIN workspace.documents d ON d.id = e.document_id
WHERE e.model = %(model)s AND e.dimension = {dim}
ORDER BY e.embedding::vector({dim}) <=> %(vector)s::vector({dim})
LIMIT %(limit)s
