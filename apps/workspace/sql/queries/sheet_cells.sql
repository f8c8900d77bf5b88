SELECT ref, formula, input, value, error, in_cycle, computations, updated_at, computed_at
FROM workspace.cells WHERE sheet = %(sheet)s
ORDER BY length(substring(ref from '^[A-Z]+')), substring(ref from '^[A-Z]+'),
         substring(ref from '[0-9]+$')::integer
