-- How busy the queue is, for deferring non-critical schedules. Both counts stop at the
-- threshold (+1), so the check stays cheap however long the queue is.
SELECT
    (SELECT count(*) FROM (
        SELECT 1 FROM nightcrew.jobs
        WHERE status IN ('pending', 'retrying') AND run_at <= %(now)s
        LIMIT %(depth_cap)s) AS d) AS depth,
    (SELECT count(*) FROM (
        SELECT 1 FROM nightcrew.jobs WHERE status = 'processing'
        LIMIT %(running_cap)s) AS r) AS running
