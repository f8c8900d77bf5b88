-- One snapshot of a document at a time (a transaction-scoped lock: a killed worker's
-- lock goes with its connection).
SELECT pg_advisory_xact_lock(hashtextextended('workspace.snapshot:' || %(id)s::text, 0))
