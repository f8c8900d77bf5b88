-- A new waiting run, unless one is already waiting (runs_one_queued).
INSERT INTO league.runs (triggered_by, request_id, match_id, retry_of)
VALUES (%(triggered_by)s, %(request_id)s, %(match_id)s, %(retry_of)s)
ON CONFLICT ((status)) WHERE status = 'queued' DO NOTHING
RETURNING id, status
