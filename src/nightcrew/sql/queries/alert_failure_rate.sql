-- Outcomes of the failure-rate window, from the per-minute rollup (never the jobs table).
-- nightcrew's own jobs (notifications, maintenance) are left out: a failing alert webhook
-- must not feed the alert it reports.
SELECT coalesce(sum(completed), 0)::bigint AS completed, coalesce(sum(failed), 0)::bigint AS failed
FROM nightcrew.stats_minute
WHERE minute >= date_trunc('minute', %(since)s::timestamptz)
  AND minute <= %(now)s::timestamptz
  AND type NOT LIKE 'nightcrew.%%'
