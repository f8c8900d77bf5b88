UPDATE league.runs SET refresh_job_id = coalesce(refresh_job_id, %(job_id)s) WHERE id = %(id)s
