-- Start the waiting run unless one is processing. FOR NO KEY UPDATE, as the update itself
-- takes: it does not conflict with the key-share locks of joining triggers' foreign keys.
UPDATE league.runs SET status = 'processing', started_at = clock_timestamp(), functions_total = %(total)s
WHERE id = (SELECT id FROM league.runs WHERE status = 'queued' FOR NO KEY UPDATE)
  AND NOT EXISTS (SELECT 1 FROM league.runs WHERE status = 'processing')
RETURNING id
