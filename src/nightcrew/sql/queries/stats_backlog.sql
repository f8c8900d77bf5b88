-- Queue depth and running count from the backlog's partial indexes (jobs_fetch_idx,
-- jobs_lease_idx): bounded by the backlog, not by the history the table keeps.
SELECT queue_depth, running FROM nightcrew.stats_backlog()
