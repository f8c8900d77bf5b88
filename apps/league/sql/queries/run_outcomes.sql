SELECT function, job_id FROM league.run_functions WHERE run_id = %(run_id)s
