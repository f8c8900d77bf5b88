-- Autoscaling: how many jobs of these queues are runnable now (counted up to %(cap)s, so a
-- huge backlog costs no more than a large one) and how long the oldest has been waiting.
-- Both read only jobs_fetch_idx's rows (pending and retrying).
SELECT (SELECT count(*) FROM (
            SELECT 1 FROM nightcrew.jobs
            WHERE queue = ANY(%(queues)s) AND status IN ('pending', 'retrying')
              AND run_at <= now()
            LIMIT %(cap)s) AS runnable) AS backlog,
       coalesce(extract(epoch FROM now() - (
            SELECT min(run_at) FROM nightcrew.jobs
            WHERE queue = ANY(%(queues)s) AND status IN ('pending', 'retrying')
              AND run_at <= now())), 0)::float8 AS oldest_age
