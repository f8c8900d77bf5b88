-- nightcrew 0010: archived jobs stay readable through the API, under row-level security.
--
-- GET /api/jobs/{id} and the dashboard's job page fall back to nightcrew.jobs_history once
-- pruning moved a job there. They run as nightcrew_api, which had no privilege on the
-- archive at all; it may now read it under the rule of nightcrew.jobs: admins every row, a
-- user the jobs they enqueued. The owner is taken from the archived row itself
-- (job ->> 'user_id'), so rows archived before this migration are covered too. Read only:
-- nothing but the owner's retention pass ever changes the archive.

ALTER TABLE nightcrew.jobs_history ENABLE ROW LEVEL SECURITY;
CREATE POLICY jobs_history_owner ON nightcrew.jobs_history FOR SELECT TO nightcrew_api
    USING (current_setting('nightcrew.is_admin', true) = 'true'
           OR job ->> 'user_id' = current_setting('nightcrew.user_id', true));
GRANT SELECT ON nightcrew.jobs_history TO nightcrew_api;
