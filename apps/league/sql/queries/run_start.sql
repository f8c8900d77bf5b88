-- Start the waiting run unless one is processing.
UPDATE league.runs SET status = 'processing', started_at = clock_timestamp(), functions_total = %(total)s
WHERE id = (SELECT id FROM league.runs WHERE status = 'queued' FOR UPDATE)
  AND NOT EXISTS (SELECT 1 FROM league.runs WHERE status = 'processing')
RETURNING id
