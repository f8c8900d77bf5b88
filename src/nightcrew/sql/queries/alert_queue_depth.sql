-- Runnable jobs waiting, counted no further than the threshold + 1 (a bounded walk of the
-- fetch index however long the backlog is).
SELECT count(*)::int AS depth
FROM (SELECT 1 FROM nightcrew.jobs
      WHERE status IN ('pending', 'retrying') AND pending_parents = 0 AND run_at <= %(now)s::timestamptz
      LIMIT %(limit)s) AS waiting
