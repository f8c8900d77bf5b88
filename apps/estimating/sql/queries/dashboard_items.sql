-- Library items for the dashboard's item list: by code or name match, most popular first.
SELECT i.code, i.name, i.unit, i.category,
       coalesce(p.popularity_score, 0) AS popularity_score, p.trend
FROM estimating.items AS i
LEFT JOIN estimating.item_popularity AS p ON p.item_id = i.id
WHERE %(search)s::text IS NULL
   OR i.code ILIKE '%%' || %(search)s || '%%' OR i.name ILIKE '%%' || %(search)s || '%%'
ORDER BY coalesce(p.popularity_score, 0) DESC, i.code
LIMIT %(limit)s
