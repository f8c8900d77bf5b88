-- The parents of a running dependent (ctx.parents), by the dependent's id (its depends_on
-- never travels to the worker and back): the live rows, else their archived copies (a
-- parent pruned meanwhile), in depends_on order (parent id order). A page: the parents
-- after the first %(offset)s, at most %(limit)s of them (NULL: all), and of those only
-- the ones whose status is in %(statuses)s (NULL: every status). Only the page's ids are
-- looked up.
WITH wanted AS (
    SELECT u.id, u.n
    FROM nightcrew.jobs AS d
    CROSS JOIN LATERAL unnest(d.depends_on) WITH ORDINALITY AS u(id, n)
    WHERE d.id = %(id)s::uuid AND u.n > %(offset)s::bigint
    ORDER BY u.n
    LIMIT %(limit)s::bigint
), found AS (
    SELECT wanted.n, p.id, p.type, p.status::text AS status, p.result, p.error
    FROM wanted JOIN nightcrew.jobs AS p ON p.id = wanted.id
    UNION ALL
    SELECT wanted.n, h.id, h.type, h.status::text, h.job -> 'result', h.job ->> 'error'
    FROM wanted JOIN nightcrew.jobs_history AS h ON h.id = wanted.id
    WHERE NOT EXISTS (SELECT FROM nightcrew.jobs AS j WHERE j.id = h.id)
)
SELECT id, type, status, result, error
FROM found
WHERE %(statuses)s::text[] IS NULL OR status = ANY (%(statuses)s::text[])
ORDER BY n
