INSERT INTO workspace.embedding_model (model, dimension) VALUES (%(model)s, %(dimension)s)
ON CONFLICT (singleton) DO NOTHING
