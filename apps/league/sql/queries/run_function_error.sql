-- An attempt failed and will be retried.
UPDATE league.run_functions SET error = %(error)s, attempts = %(attempt)s
WHERE run_id = %(run_id)s AND function = %(function)s AND status IN ('queued', 'processing')
