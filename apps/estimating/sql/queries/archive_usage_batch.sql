-- Move one batch of usage older than the cutoff into the archive table.
WITH moved AS (
    DELETE FROM estimating.usage
    WHERE id IN (SELECT id FROM estimating.usage WHERE used_at < %(cutoff)s
                 ORDER BY used_at LIMIT %(batch)s FOR UPDATE SKIP LOCKED)
    RETURNING id, item_id, project_id, estimate_key, quantity, used_at
)
INSERT INTO estimating.usage_archive (id, item_id, project_id, estimate_key, quantity, used_at)
SELECT id, item_id, project_id, estimate_key, quantity, used_at FROM moved
