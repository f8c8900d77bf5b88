SELECT id FROM nightcrew.jobs
WHERE type = 'workspace.recompute_formulas' AND payload ->> 'sheet' = %(sheet)s
  AND status IN ('pending', 'retrying', 'processing')
ORDER BY created_at DESC LIMIT 1
