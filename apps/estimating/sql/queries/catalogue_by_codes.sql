SELECT id, code, kind FROM estimating.catalogue WHERE code = ANY(%(codes)s)
