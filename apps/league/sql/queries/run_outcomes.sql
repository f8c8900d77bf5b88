SELECT function, status FROM league.run_functions WHERE run_id = %(run_id)s ORDER BY function
