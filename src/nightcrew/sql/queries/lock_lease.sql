-- ctx.transaction(): lock the job row for the transaction, proving the lease is still held.
-- While locked, rescue (SKIP LOCKED) cannot take the job away mid-transaction.
SELECT cancel_requested
FROM nightcrew.jobs
WHERE id = %(id)s
  AND status = 'processing'
  AND worker_id = %(worker_id)s
  AND attempts = %(attempt)s
FOR NO KEY UPDATE
