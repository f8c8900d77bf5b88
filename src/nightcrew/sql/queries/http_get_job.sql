-- One job as the API shows it (row-level security decides whether it is visible): the live
-- row, else the archived one once pruning moved it to jobs_history (its status as it ended).
-- "archived" tells the two apart; the archived columns are rebuilt from the row's JSON.
(SELECT id, type, queue, payload, status::text AS status, priority, attempts, max_attempts,
        progress, stage, metrics, result, error, run_at, created_at, started_at, completed_at,
        updated_at, user_id, dedupe_scope, depends_on, pending_parents, false AS archived
 FROM nightcrew.jobs
 WHERE id = %(id)s)
UNION ALL
(SELECT h.id, h.type, h.queue, r.payload, h.status::text AS status, r.priority, r.attempts,
        r.max_attempts, r.progress, r.stage, r.metrics, r.result, r.error, r.run_at,
        h.created_at, r.started_at, h.completed_at, r.updated_at, r.user_id,
        coalesce(r.dedupe_scope, 'active'), r.depends_on, coalesce(r.pending_parents, 0),
        true AS archived
 FROM nightcrew.jobs_history AS h
 CROSS JOIN LATERAL jsonb_populate_record(NULL::nightcrew.jobs, h.job) AS r
 WHERE h.id = %(id)s)
LIMIT 1
