-- Schedules with the status of the job they fired last (live or archived), and their last 7
-- days (the current UTC day and the six before it) from the per-day counters, which the
-- jobs_record_endings trigger keeps: never a scan of the jobs table.
SELECT s.*, coalesce(j.status, h.status)::text AS last_job_status,
       coalesce(w.succeeded, 0) AS stats_succeeded, coalesce(w.failed, 0) AS stats_failed,
       w.avg_duration_s AS stats_avg_duration_s, w.last_at AS stats_last_run_at,
       w.last_status AS stats_last_outcome
FROM nightcrew.schedules AS s
LEFT JOIN nightcrew.jobs AS j ON j.id = s.last_job_id
LEFT JOIN nightcrew.jobs_history AS h ON h.id = s.last_job_id
LEFT JOIN LATERAL (
    SELECT sum(d.succeeded)::bigint AS succeeded, sum(d.failed)::bigint AS failed,
           sum(d.duration_sum) / nullif(sum(d.duration_n), 0) AS avg_duration_s,
           max(d.last_at) AS last_at,
           (array_agg(d.last_status ORDER BY d.last_at DESC))[1] AS last_status
    FROM nightcrew.schedule_runs_daily AS d
    WHERE d.schedule_name = s.name
      AND d.day >= (now() AT TIME ZONE 'UTC')::date - 6
) AS w ON true
WHERE %(name)s::text IS NULL OR s.name = %(name)s
ORDER BY s.name
