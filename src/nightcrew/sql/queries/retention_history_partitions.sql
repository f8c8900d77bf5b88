-- Retention: the month partitions of jobs_history whose whole month ended before
-- %(before)s (their names say the month, see migration 0013), oldest first.
SELECT c.relname
FROM pg_inherits AS i
JOIN pg_class AS c ON c.oid = i.inhrelid
WHERE i.inhparent = 'nightcrew.jobs_history'::regclass
  AND c.relnamespace = 'nightcrew_history'::regnamespace
  AND c.relname ~ '^jobs_history_\d{4}_\d{2}$'
  AND (to_timestamp(substr(c.relname, 14), 'YYYY_MM')::timestamp + interval '1 month')
      AT TIME ZONE 'UTC' <= %(before)s::timestamptz
ORDER BY c.relname
