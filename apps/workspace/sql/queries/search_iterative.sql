-- Keep scanning the HNSW graph while row-level security filters rows out (pgvector 0.8).
SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true),
       set_config('hnsw.ef_search', %(ef_search)s, true)
