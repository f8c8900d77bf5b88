SELECT s.name, s.last_recompute_job, s.last_recompute_at, count(c.ref) AS cells,
       count(c.error) AS errors
FROM workspace.sheets s LEFT JOIN workspace.cells c ON c.sheet = s.name
GROUP BY s.name ORDER BY s.name LIMIT %(limit)s
