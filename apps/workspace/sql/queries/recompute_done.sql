WITH consumed AS (
    DELETE FROM workspace.cell_changes WHERE sheet = %(sheet)s AND id <= %(last_change)s
)
UPDATE workspace.sheets SET last_recompute_job = %(job)s, last_recompute_at = now()
WHERE name = %(sheet)s
