-- One step of the archive: look at the next batch of estimates after a key (keyset order,
-- so each estimate is looked at once per run) and move those whose newest line is older
-- than the cutoff: the estimate to estimates_archive, every line of it to usage_archive
-- (keys kept), in one statement. Returns the last key looked at (NULL: none left) and how
-- many estimates and lines moved.
WITH scanned AS (
    SELECT e.key, e.project_id, e.estimate_id,
           (SELECT max(u.used_at) FROM estimating.usage AS u
            WHERE u.estimate_key = e.key) AS newest
    FROM estimating.estimates AS e
    WHERE e.key > %(after)s
    ORDER BY e.key
    LIMIT %(batch)s
    FOR UPDATE
), picked AS (
    SELECT key, project_id, estimate_id FROM scanned WHERE newest < %(cutoff)s
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
SELECT (SELECT max(key) FROM scanned) AS last_key,
       (SELECT count(*) FROM archived) AS estimates,
       (SELECT count(*) FROM archived_lines) AS lines,
       (SELECT count(*) FROM removed) AS removed
