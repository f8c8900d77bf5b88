SELECT ref, value, error FROM workspace.cells WHERE sheet = %(sheet)s AND ref = ANY(%(refs)s)
