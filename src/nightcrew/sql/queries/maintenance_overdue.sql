-- Jobs still processing well past their own timeout (their worker should have stopped
-- them): reported by the maintenance job, not touched.
SELECT id, type, worker_id, started_at, timeout_seconds,
       coalesce(%(now)s, now()) - started_at AS running_for
FROM nightcrew.jobs
WHERE status = 'processing'
  AND timeout_seconds IS NOT NULL
  AND started_at + make_interval(secs => timeout_seconds + %(slack)s) < coalesce(%(now)s, now())
ORDER BY started_at
LIMIT %(limit)s
