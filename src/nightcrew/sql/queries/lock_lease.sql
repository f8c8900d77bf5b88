-- ctx.transaction(): lock the job row for the transaction, proving the lease is still held,
-- and extend the lease (the proof is as good as a heartbeat's). Heartbeats skip rows locked
-- by a transaction, so a long transaction runs this again just before it commits: its lease
-- then counts from the commit, not from its start. clock_timestamp(), not now(): now() is
-- the transaction's start. While locked, rescue (SKIP LOCKED) cannot take the job away.
UPDATE nightcrew.jobs
SET lease_expires_at = greatest(lease_expires_at,
                                clock_timestamp() + make_interval(secs => %(lease_seconds)s))
WHERE id = %(id)s
  AND status = 'processing'
  AND worker_id = %(worker_id)s
  AND attempts = %(attempt)s
RETURNING cancel_requested
