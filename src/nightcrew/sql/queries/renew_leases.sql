-- Heartbeat: extend the leases this worker still holds; report cancellation requests.
UPDATE nightcrew.jobs AS j
SET lease_expires_at = now() + make_interval(secs => %(lease_seconds)s)
FROM unnest(%(ids)s::uuid[], %(attempts)s::int[]) AS h(id, attempt)
WHERE j.id = h.id
  AND j.status = 'processing'
  AND j.worker_id = %(worker_id)s
  AND j.attempts = h.attempt
RETURNING j.id, j.cancel_requested
