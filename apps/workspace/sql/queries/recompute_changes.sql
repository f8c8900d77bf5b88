SELECT coalesce(max(id), 0) AS last_change, coalesce(array_agg(DISTINCT ref), '{}') AS refs
FROM workspace.cell_changes WHERE sheet = %(sheet)s
