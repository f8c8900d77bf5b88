-- Retention: drop one month partition of jobs_history (returns the rows it held); gives up
-- with lock_not_available when jobs_history stays busy for 2 s (see migration 0013).
SELECT nightcrew.drop_history_partition(%(name)s)
