-- The latest runs with their functions' outcomes (the Background Job Status table).
SELECT r.id, r.status, r.triggered_by, r.request_id, r.match_id, r.retry_of,
       r.failed_functions, r.invalidated_tags, r.created_at, r.started_at, r.completed_at,
       round(extract(epoch FROM r.completed_at - r.started_at)::numeric * 1000, 1) AS duration_ms,
       (SELECT count(*) FROM league.run_triggers t WHERE t.run_id = r.id) AS triggers,
       (SELECT coalesce(json_agg(json_build_object(
                   'function', f.function, 'status', f.status, 'attempts', f.attempts,
                   'duration_ms', f.duration_ms, 'rows', f.rows_written, 'error', f.error,
                   'job_id', f.job_id) ORDER BY f.function), '[]')
        FROM league.run_functions f WHERE f.run_id = r.id) AS functions
FROM league.runs r
WHERE %(id)s::uuid IS NULL OR r.id = %(id)s
ORDER BY r.created_at DESC, r.id
LIMIT %(limit)s
