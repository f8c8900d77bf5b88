-- Runnable jobs (all queues), counted up to %(cap)s: is the queue quiet enough for a
-- when="quiet" schedule? Reads the fetch index's rows, never more than the cap.
SELECT count(*) AS backlog
FROM (SELECT 1 FROM nightcrew.jobs
      WHERE status IN ('pending', 'retrying') AND run_at <= %(now)s
      LIMIT %(cap)s) AS runnable
