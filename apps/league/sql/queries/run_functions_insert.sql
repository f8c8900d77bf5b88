INSERT INTO league.run_functions (run_id, function, job_id)
SELECT %(run_id)s, f, j FROM unnest(%(functions)s::text[], %(job_ids)s::uuid[]) AS u (f, j)
