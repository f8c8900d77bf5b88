-- A sustained condition holds now: remember since when (kept if already known).
INSERT INTO nightcrew.alert_watch (rule, since) VALUES (%(rule)s, %(now)s)
ON CONFLICT (rule) DO UPDATE SET since = nightcrew.alert_watch.since
RETURNING since
