INSERT INTO workspace.cells (sheet, ref, owner, formula, input)
VALUES (%(sheet)s, %(ref)s, (SELECT owner FROM workspace.sheets WHERE name = %(sheet)s),
        %(formula)s, %(input)s)
ON CONFLICT (sheet, ref) DO UPDATE
SET formula = excluded.formula, input = excluded.input, updated_at = now()
