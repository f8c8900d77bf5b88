-- Invalid indexes of nightcrew.jobs that an interrupted REINDEX INDEX CONCURRENTLY left
-- behind (named <index>_ccnew or _ccnew<n>): never used by queries, yet updated by every
-- write, so nightcrew.vacuum drops them before it measures.
SELECT c.relname AS index
FROM pg_index AS i
JOIN pg_class AS c ON c.oid = i.indexrelid
WHERE i.indrelid = 'nightcrew.jobs'::regclass
  AND NOT i.indisvalid
  AND c.relname ~ '_ccnew[0-9]*$'
ORDER BY c.relname
