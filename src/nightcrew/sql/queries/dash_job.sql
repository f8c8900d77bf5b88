-- One job with everything its dashboard page shows (row-level security decides visibility):
-- the live row, else the archived one in jobs_history ("archived", read-only on the page).
(SELECT id, type, queue, payload, status::text AS status, priority, attempts, max_attempts,
        progress, stage, metrics, result, error, run_at, created_at, started_at, completed_at,
        updated_at, user_id,
        errors, dedupe_key, timeout_seconds, worker_id, cancel_requested, schedule_name,
        scheduled_for, depends_on, pending_parents, on_parent_failure, false AS archived,
        NULL::timestamptz AS archived_at
 FROM nightcrew.jobs
 WHERE id = %(id)s)
UNION ALL
(SELECT h.id, h.type, h.queue, r.payload, h.status::text AS status, r.priority, r.attempts,
        r.max_attempts, r.progress, r.stage, r.metrics, r.result, r.error, r.run_at,
        h.created_at, r.started_at, h.completed_at, r.updated_at, r.user_id,
        r.errors, r.dedupe_key, r.timeout_seconds, r.worker_id, r.cancel_requested,
        h.schedule_name, r.scheduled_for, r.depends_on, coalesce(r.pending_parents, 0),
        r.on_parent_failure,
        true AS archived, h.archived_at
 FROM nightcrew.jobs_history AS h
 CROSS JOIN LATERAL jsonb_populate_record(NULL::nightcrew.jobs, h.job) AS r
 WHERE h.id = %(id)s)
LIMIT 1
