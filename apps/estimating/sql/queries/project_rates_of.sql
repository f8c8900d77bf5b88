-- Every dated rate override of a project, by catalogue code then date.
SELECT c.code, c.name, c.unit, r.rate, r.effective_from
FROM estimating.project_rates AS r
JOIN estimating.catalogue AS c ON c.id = r.catalogue_id
WHERE r.project_id = %(project_id)s
ORDER BY c.code, r.effective_from
