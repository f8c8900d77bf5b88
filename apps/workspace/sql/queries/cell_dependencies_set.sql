WITH cleared AS (
    DELETE FROM workspace.cell_dependencies WHERE sheet = %(sheet)s AND ref = %(ref)s
)
INSERT INTO workspace.cell_dependencies (sheet, ref, depends_on)
SELECT %(sheet)s, %(ref)s, unnest(%(depends_on)s::text[])
