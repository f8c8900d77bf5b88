-- The parents of a running dependent, for ctx.parents, by the dependent's id (its
-- depends_on never travels to the worker and back): the live rows, else their archived
-- copies (a parent pruned meanwhile). Parent id order.
WITH wanted AS (
    SELECT u.id
    FROM nightcrew.jobs AS d
    CROSS JOIN LATERAL unnest(d.depends_on) AS u(id)
    WHERE d.id = %(id)s::uuid
)
SELECT p.id, p.type, p.status::text AS status, p.result, p.error
FROM wanted JOIN nightcrew.jobs AS p ON p.id = wanted.id
UNION ALL
SELECT h.id, h.type, h.status::text, h.job -> 'result', h.job ->> 'error'
FROM wanted JOIN nightcrew.jobs_history AS h ON h.id = wanted.id
WHERE NOT EXISTS (SELECT FROM nightcrew.jobs AS j WHERE j.id = h.id)
ORDER BY id
