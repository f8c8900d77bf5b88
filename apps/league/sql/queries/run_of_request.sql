-- The run a request id already started or joined.
SELECT r.id, r.status FROM league.run_triggers t JOIN league.runs r ON r.id = t.run_id
WHERE t.request_id = %(request_id)s
