-- Enabled schedules and the tick of their latest successful job (index-backed: the newest
-- ticks of the schedule first, stopping at the first completed one).
SELECT s.*,
       (SELECT j.scheduled_for FROM nightcrew.jobs AS j
        WHERE j.schedule_name = s.name AND j.status = 'completed'
        ORDER BY j.scheduled_for DESC LIMIT 1) AS last_success_at
FROM nightcrew.schedules AS s
WHERE s.enabled
ORDER BY s.name
