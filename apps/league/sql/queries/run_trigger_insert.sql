INSERT INTO league.run_triggers (request_id, run_id, triggered_by, match_id, retry_of)
VALUES (%(request_id)s, %(run_id)s, %(triggered_by)s, %(match_id)s, %(retry_of)s)
