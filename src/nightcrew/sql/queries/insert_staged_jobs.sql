-- Move staged 'active'-scope jobs into the queue; one job per dedupe key, existing live
-- jobs win.
INSERT INTO nightcrew.jobs AS j (
    id, type, queue, payload, priority, run_at, max_attempts, timeout_seconds,
    dedupe_key, dedupe_scope, user_id, notify
)
SELECT DISTINCT ON (s.dedupe_key)
       s.id, s.type, s.queue, s.payload, s.priority, s.run_at, s.max_attempts,
       s.timeout_seconds, s.dedupe_key, 'active', s.user_id, s.notify
FROM nightcrew_staged_jobs AS s
WHERE s.dedupe_scope = 'active'
ORDER BY s.dedupe_key, s.ord
ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL AND dedupe_scope = 'active'
    AND status IN ('pending', 'processing', 'retrying')
DO UPDATE SET dedupe_key = EXCLUDED.dedupe_key
RETURNING j.id, j.dedupe_key, j.dedupe_scope
