-- Join or create the waiting run for a trigger (see the function in migration 0003).
SELECT id, status, created, existing, needs_job
FROM league.request_run(%(triggered_by)s, %(request_id)s, %(match_id)s, %(retry_of)s)
