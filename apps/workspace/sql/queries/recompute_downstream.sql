-- The changed cells and every cell that reads them, directly or not. UNION (not ALL)
-- stops at cells already found, so a cycle ends the recursion.
WITH RECURSIVE downstream (ref) AS (
    SELECT unnest(%(refs)s::text[])
    UNION
    SELECT d.ref
    FROM workspace.cell_dependencies d
    JOIN downstream ON d.sheet = %(sheet)s AND d.depends_on = downstream.ref
)
SELECT c.ref, c.formula, c.input,
       coalesce(array_agg(d.depends_on) FILTER (WHERE d.depends_on IS NOT NULL), '{}') AS reads
FROM downstream
JOIN workspace.cells c ON c.sheet = %(sheet)s AND c.ref = downstream.ref
LEFT JOIN workspace.cell_dependencies d ON d.sheet = c.sheet AND d.ref = c.ref
GROUP BY c.ref, c.formula, c.input
