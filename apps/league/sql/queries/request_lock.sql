-- Serialise the requests that carry one request id (two at once get one run).
SELECT pg_advisory_xact_lock(hashtext('league.request:' || %(request_id)s))
