-- An estimate of a project, live or archived (live first: an id used again after its
-- archiving names a new estimate).
SELECT key, false AS archived, NULL::timestamptz AS archived_at
FROM estimating.estimates
WHERE project_id = %(project_id)s AND estimate_id = %(estimate_id)s
UNION ALL
SELECT key, true, archived_at
FROM estimating.estimates_archive
WHERE project_id = %(project_id)s AND estimate_id = %(estimate_id)s
ORDER BY archived, archived_at DESC
LIMIT 1
