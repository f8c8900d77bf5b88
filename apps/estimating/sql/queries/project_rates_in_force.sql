-- The project's rate of each catalogue entry on a day: its latest dated override.
SELECT DISTINCT ON (catalogue_id) catalogue_id, rate, effective_from
FROM estimating.project_rates
WHERE project_id = %(project_id)s AND catalogue_id = ANY(%(catalogue_ids)s)
  AND effective_from <= %(as_of)s
ORDER BY catalogue_id, effective_from DESC
