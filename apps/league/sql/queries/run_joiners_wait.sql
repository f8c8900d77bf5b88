-- Wait until every trigger that joined the run while it waited, holding writes the run
-- must see, has committed (migration 0004). Run on its own (autocommit): the lock is
-- released at once, so triggers joining the next run never queue behind it.
SELECT pg_advisory_xact_lock(league.join_lock(%(run_id)s))
