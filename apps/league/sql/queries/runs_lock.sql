-- Serialise starting and finishing runs (never two processing; a run finishing sees the
-- one that waits).
SELECT pg_advisory_xact_lock(hashtext('league.runs'))
