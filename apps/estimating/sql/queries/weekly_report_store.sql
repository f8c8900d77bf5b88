INSERT INTO estimating.weekly_reports (week_start, report)
VALUES (%(week_start)s, %(report)s)
ON CONFLICT (week_start) DO UPDATE SET report = excluded.report, created_at = now()
