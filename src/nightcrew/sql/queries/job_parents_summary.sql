-- How many parents a running dependent has in each status (ctx.parents.summary()), counted
-- in the database: no parent row travels. Live rows, else archived copies, as job_parents.
WITH wanted AS (
    SELECT u.id
    FROM nightcrew.jobs AS d
    CROSS JOIN LATERAL unnest(d.depends_on) AS u(id)
    WHERE d.id = %(id)s::uuid
), found AS (
    SELECT p.status::text AS status
    FROM wanted JOIN nightcrew.jobs AS p ON p.id = wanted.id
    UNION ALL
    SELECT h.status::text
    FROM wanted JOIN nightcrew.jobs_history AS h ON h.id = wanted.id
    WHERE NOT EXISTS (SELECT FROM nightcrew.jobs AS j WHERE j.id = h.id)
)
SELECT status, count(*) FROM found GROUP BY status
