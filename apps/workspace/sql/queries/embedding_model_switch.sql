-- The new model becomes the searched one; the old model's vectors go.
WITH switched AS (
    UPDATE workspace.embedding_model
    SET model = %(model)s, dimension = %(dimension)s, changed_at = now()
    RETURNING model
)
DELETE FROM workspace.embeddings WHERE model <> (SELECT model FROM switched)
