-- A job's parents and dependents with their statuses, for its dashboard page (row-level
-- security decides which are listed; archived ones are left out): at most limit of each.
WITH parents AS (
    SELECT j.id, j.type, j.status::text AS status
    FROM nightcrew.jobs AS j
    WHERE j.id = ANY (%(parents)s::uuid[])
    ORDER BY j.id
    LIMIT %(limit)s
), dependents AS (
    SELECT j.id, j.type, j.status::text AS status
    FROM nightcrew.job_dependencies AS e
    JOIN nightcrew.jobs AS j ON j.id = e.job_id
    WHERE e.parent_id = %(id)s::uuid
    ORDER BY j.id
    LIMIT %(limit)s
)
SELECT 'parent' AS relation, id, type, status FROM parents
UNION ALL
SELECT 'dependent', id, type, status FROM dependents
