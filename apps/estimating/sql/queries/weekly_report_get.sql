-- The stored weekly report covering a day (its week starts on or up to six days before
-- it), else the latest when no day is given.
SELECT report FROM estimating.weekly_reports
WHERE %(day)s::date IS NULL
   OR (week_start <= %(day)s::date AND week_start > %(day)s::date - 7)
ORDER BY week_start DESC
LIMIT 1
