SELECT name, owner, created_at, last_recompute_job, last_recompute_at
FROM workspace.sheets WHERE name = %(sheet)s
