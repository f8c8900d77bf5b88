SELECT id, code, name, unit, category FROM estimating.items WHERE code = ANY(%(codes)s)
