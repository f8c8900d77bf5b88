SELECT request_id, triggered_by, match_id, retry_of, received_at
FROM league.run_triggers WHERE run_id = %(run_id)s ORDER BY received_at, request_id
