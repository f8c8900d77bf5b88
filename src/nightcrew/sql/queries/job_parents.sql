-- The parents of a running dependent, for ctx.parents: the live rows, else their archived
-- copies (a parent pruned meanwhile). Parent id order.
SELECT id, type, status::text AS status, result, error
FROM nightcrew.jobs WHERE id = ANY (%(ids)s::uuid[])
UNION ALL
SELECT h.id, h.type, h.status::text, h.job -> 'result', h.job ->> 'error'
FROM nightcrew.jobs_history AS h
WHERE h.id = ANY (%(ids)s::uuid[])
  AND NOT EXISTS (SELECT FROM nightcrew.jobs AS j WHERE j.id = h.id)
ORDER BY id
