-- Before pruning archives: the month partitions of jobs_history for now and the next month
-- exist, so archived rows land in a partition retention can drop whole.
SELECT nightcrew.history_partition(now()),
       nightcrew.history_partition(now() + interval '1 month')
