-- Move one batch of estimates whose newest line is older than the cutoff to the archive:
-- the estimate to estimates_archive, every line of it to usage_archive (keys kept), in one
-- statement. Returns how many estimates and lines moved.
WITH picked AS (
    SELECT e.key, e.project_id, e.estimate_id
    FROM estimating.estimates AS e
    WHERE (SELECT max(u.used_at) FROM estimating.usage AS u WHERE u.estimate_key = e.key)
          < %(cutoff)s
    ORDER BY e.key
    LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED
), lines AS (
    DELETE FROM estimating.usage AS u USING picked AS p
    WHERE u.estimate_key = p.key
    RETURNING u.id, u.item_id, u.project_id, u.estimate_key, u.quantity, u.used_at
), archived_lines AS (
    INSERT INTO estimating.usage_archive (id, item_id, project_id, estimate_key, quantity,
                                          used_at)
    SELECT id, item_id, project_id, estimate_key, quantity, used_at FROM lines
    RETURNING 1
), archived AS (
    INSERT INTO estimating.estimates_archive (key, project_id, estimate_id)
    SELECT key, project_id, estimate_id FROM picked
    RETURNING 1
), removed AS (
    DELETE FROM estimating.estimates AS e USING picked AS p
    WHERE e.key = p.key
    RETURNING 1
)
SELECT (SELECT count(*) FROM archived) AS estimates,
       (SELECT count(*) FROM archived_lines) AS lines,
       (SELECT count(*) FROM removed) AS removed
