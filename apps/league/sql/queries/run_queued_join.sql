-- The waiting run, locked until this transaction ends: it can't start before the trigger
-- that joins it (and the result written with it) is committed.
SELECT id, status FROM league.runs WHERE status = 'queued' FOR SHARE
