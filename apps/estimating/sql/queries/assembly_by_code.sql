SELECT id, code, name, parent_id FROM estimating.assemblies WHERE code = %(code)s
