-- For item A and each B: in how many of A's estimates (last 30 days) B appears too, as a
-- percentage of A's estimates. Each unordered pair is counted once (a < b), then written
-- in both directions; only the top_n partners of each item are kept.
WITH per_item AS (
    SELECT item_id, count(*) AS estimates FROM popularity_recent GROUP BY item_id
), pairs AS (
    SELECT a.item_id AS a, b.item_id AS b, count(*) AS together
    FROM popularity_recent AS a
    JOIN popularity_recent AS b ON b.estimate_key = a.estimate_key AND b.item_id > a.item_id
    GROUP BY a.item_id, b.item_id
    HAVING count(*) >= %(min_together)s
), directed AS (
    SELECT a AS item_id, b AS other_item_id, together FROM pairs
    UNION ALL
    SELECT b, a, together FROM pairs
), ranked AS (
    SELECT d.item_id, d.other_item_id, d.together,
           round(100.0 * d.together / p.estimates, 2) AS confidence_pct,
           row_number() OVER (PARTITION BY d.item_id
                              ORDER BY d.together DESC, d.other_item_id) AS rank
    FROM directed AS d JOIN per_item AS p USING (item_id)
)
INSERT INTO estimating.item_cooccurrence
    (item_id, other_item_id, together_count, confidence_pct, computed_at)
SELECT item_id, other_item_id, together, confidence_pct, %(now)s
FROM ranked
WHERE rank <= %(top_n)s
