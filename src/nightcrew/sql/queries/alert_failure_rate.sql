-- Outcomes of the failure-rate window, from the stats rollup (never the jobs table).
-- stats_compact() keeps the minutes of the last hour, so a window of up to an hour reads
-- minutes only (exact to the minute); a longer one adds the hour rows overlapping the part
-- older than that (to the hour: the oldest hour may start before the window). A minute is
-- either in stats_minute or folded into stats_hour, never both.
-- nightcrew's own jobs (notifications, maintenance) are left out: a failing alert webhook
-- must not feed the alert it reports.
WITH rollup AS (
    SELECT completed, failed FROM nightcrew.stats_minute
    WHERE minute >= date_trunc('minute', %(since)s::timestamptz)
      AND minute <= %(now)s::timestamptz
      AND type NOT LIKE 'nightcrew.%%'
    UNION ALL
    SELECT completed, failed FROM nightcrew.stats_hour
    WHERE date_trunc('minute', %(since)s::timestamptz)
              < date_trunc('minute', %(now)s::timestamptz) - interval '60 minutes'
      AND hour >= date_trunc('hour', %(since)s::timestamptz)
      AND hour <= %(now)s::timestamptz
      AND type NOT LIKE 'nightcrew.%%'
)
SELECT coalesce(sum(completed), 0)::bigint AS completed, coalesce(sum(failed), 0)::bigint AS failed
FROM rollup
