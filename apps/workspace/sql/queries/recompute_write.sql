UPDATE workspace.cells c
SET value = v.value, error = v.error, in_cycle = v.in_cycle,
    computations = c.computations + 1, computed_at = now()
FROM unnest(%(refs)s::text[], %(values)s::numeric[], %(errors)s::text[], %(cycles)s::boolean[])
     AS v (ref, value, error, in_cycle)
WHERE c.sheet = %(sheet)s AND c.ref = v.ref
