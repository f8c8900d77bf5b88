-- Serialise starting and finishing runs (never two processing; a run finishing sees the
-- one that waits). A trigger creating a run while one is processing holds it shared
-- (migration 0004), so that run's end waits for the new run's commit and starts it.
SELECT pg_advisory_xact_lock(hashtext('league.runs'))
