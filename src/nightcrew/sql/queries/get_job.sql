-- One job: the live row, else its archived copy in jobs_history (rebuilt from the row's
-- JSON into a jobs row, so it reads like any job; status as it ended).
(SELECT * FROM nightcrew.jobs WHERE id = %(id)s)
UNION ALL
(SELECT r.*
 FROM nightcrew.jobs_history AS h
 CROSS JOIN LATERAL jsonb_populate_record(NULL::nightcrew.jobs, h.job) AS r
 WHERE h.id = %(id)s)
LIMIT 1
