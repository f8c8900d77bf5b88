-- One recompute of a sheet at a time: a follow-up job waits for the running one.
SELECT name FROM workspace.sheets WHERE name = %(sheet)s FOR UPDATE
