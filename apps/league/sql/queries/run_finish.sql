-- End a processing run: completed when every function succeeded, else failed.
UPDATE league.runs
SET status = CASE WHEN cardinality(%(failed)s::text[]) = 0 THEN 'completed' ELSE 'failed' END,
    failed_functions = %(failed)s, invalidated_tags = %(tags)s, completed_at = clock_timestamp()
WHERE id = %(id)s AND status = 'processing'
RETURNING status
