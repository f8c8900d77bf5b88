-- Jobs still processing past their timeout (plus slack): the first few, oldest first.
SELECT id, type, worker_id, started_at, timeout_seconds
FROM nightcrew.jobs
WHERE status = 'processing'
  AND timeout_seconds IS NOT NULL
  AND started_at + make_interval(secs => timeout_seconds + %(slack)s) < %(now)s::timestamptz
ORDER BY started_at
LIMIT 20
