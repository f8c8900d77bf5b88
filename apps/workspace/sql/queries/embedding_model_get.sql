SELECT model, dimension, changed_at FROM workspace.embedding_model
