-- Candidates: partners of any given item, not given themselves. Each keeps its best
-- reason (highest confidence); ranked by that confidence, then popularity.
WITH candidates AS (
    SELECT DISTINCT ON (c.other_item_id)
           c.other_item_id, c.confidence_pct, c.together_count, src.code AS because_of
    FROM estimating.item_cooccurrence AS c
    JOIN estimating.items AS src ON src.id = c.item_id
    WHERE c.item_id = ANY(%(item_ids)s) AND c.other_item_id <> ALL(%(item_ids)s)
    ORDER BY c.other_item_id, c.confidence_pct DESC, src.code
)
SELECT i.id AS item_id, i.code, i.name, i.unit, c.confidence_pct, c.together_count,
       coalesce(p.popularity_score, 0) AS popularity_score, c.because_of
FROM candidates AS c
JOIN estimating.items AS i ON i.id = c.other_item_id
LEFT JOIN estimating.item_popularity AS p ON p.item_id = c.other_item_id
ORDER BY c.confidence_pct DESC, popularity_score DESC, i.code
LIMIT %(limit)s
