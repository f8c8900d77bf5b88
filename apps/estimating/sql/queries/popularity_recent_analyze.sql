-- Temp tables have no statistics until analysed; the join plan depends on them.
ANALYZE popularity_recent
