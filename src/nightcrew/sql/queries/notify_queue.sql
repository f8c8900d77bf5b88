-- Wake the workers of one queue after a single enqueue that committed on its own (see
-- insert_job_plain): a transaction with only a NOTIFY writes no WAL, so it holds the
-- cluster-wide NOTIFY lock for microseconds instead of for a WAL flush.
SELECT pg_notify('nightcrew_jobs', %(queue)s)
