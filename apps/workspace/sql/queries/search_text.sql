SELECT d.id, d.title, ts_rank(d.search, q) AS score
FROM workspace.documents d, websearch_to_tsquery('english', %(q)s) q
WHERE d.search @@ q
ORDER BY score DESC, d.id
LIMIT %(limit)s
