-- Rows ever inserted into jobs, from PostgreSQL's own statistics (no trigger on enqueue).
SELECT coalesce(n_tup_ins, 0) AS inserted
FROM pg_stat_user_tables
WHERE relid = 'nightcrew.jobs'::regclass
