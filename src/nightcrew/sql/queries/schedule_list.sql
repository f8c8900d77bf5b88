-- Schedules with the status of the job they fired last (live or archived).
SELECT s.*, coalesce(j.status, h.status)::text AS last_job_status
FROM nightcrew.schedules AS s
LEFT JOIN nightcrew.jobs AS j ON j.id = s.last_job_id
LEFT JOIN nightcrew.jobs_history AS h ON h.id = s.last_job_id
WHERE %(name)s::text IS NULL OR s.name = %(name)s
ORDER BY s.name
