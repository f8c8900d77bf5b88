-- The recorded dead letters of the minutes that have ended (before %(before)s), in the order
-- they died within each minute (seq, given by the jobs_record_endings trigger).
SELECT job_id, type, error, died_at, minute, seq
FROM nightcrew.dead_letters
WHERE minute < %(before)s
ORDER BY minute, seq
LIMIT %(limit)s
