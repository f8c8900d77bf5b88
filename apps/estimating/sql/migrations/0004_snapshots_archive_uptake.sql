-- Seed 000, completed: active projects and their daily cost snapshots, archived estimates,
-- suggestion uptake, and weekly reports readable over the API.
-- Row-level security as in 0003: project data for the project's members, the rest shared.

-- Inactive projects are skipped by the daily snapshot.
ALTER TABLE estimating.projects ADD COLUMN active boolean NOT NULL DEFAULT true;

-- Per project and item used: the quantity used (live usage) and its cost at the day's unit
-- price, cost = round(unit_price * quantity, 2).
ALTER TABLE estimating.project_price_snapshots
    ADD COLUMN quantity numeric(18, 4) NOT NULL DEFAULT 0,
    ADD COLUMN cost     numeric(18, 2) NOT NULL DEFAULT 0;

-- Per project and day: its total quantity and cost (the sum of its items' rows).
CREATE TABLE estimating.project_cost_snapshots (
    snapshot_date  date NOT NULL,
    project_id     text NOT NULL REFERENCES estimating.projects (id) ON DELETE CASCADE,
    items          integer NOT NULL,
    total_quantity numeric(18, 4) NOT NULL,
    total_cost     numeric(18, 2) NOT NULL,
    PRIMARY KEY (project_id, snapshot_date)
);
CREATE INDEX project_cost_snapshots_date ON estimating.project_cost_snapshots (snapshot_date);

-- The archive of estimates (estimating.archive_usage): an estimate whose newest line is
-- older than 13 months moves here, its lines to usage_archive, keeping its key.
CREATE TABLE estimating.estimates_archive (
    key         bigint PRIMARY KEY,
    project_id  text NOT NULL REFERENCES estimating.projects (id) ON DELETE CASCADE,
    estimate_id text NOT NULL,
    archived_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX estimates_archive_id ON estimating.estimates_archive (project_id, estimate_id);
CREATE INDEX usage_archive_estimate ON estimating.usage_archive (estimate_key);
CREATE INDEX usage_archive_item ON estimating.usage_archive (item_id, used_at);
-- The archive picks estimates by their newest line; an estimate's lines by its key.
CREATE INDEX usage_estimate ON estimating.usage (estimate_key, used_at);

-- Suggestions offered for an estimate (GET /suggestions with project_id and estimate_id)
-- and whether the estimate then used them (POST /usage with "suggested" or the id).
CREATE TABLE estimating.suggestion_offers (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id  text NOT NULL REFERENCES estimating.projects (id) ON DELETE CASCADE,
    estimate_id text NOT NULL CHECK (estimate_id <> ''),
    item_id     integer NOT NULL REFERENCES estimating.items (id) ON DELETE CASCADE,
    offered_at  timestamptz NOT NULL DEFAULT now(),
    used_at     timestamptz,
    UNIQUE (project_id, estimate_id, item_id)
);
CREATE INDEX suggestion_offers_offered ON estimating.suggestion_offers (offered_at);

-- ---- row-level security ------------------------------------------------------------------

GRANT USAGE ON ALL SEQUENCES IN SCHEMA estimating TO nightcrew_api;

-- Read by the project's members; written by the worker (the table owner) only.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['project_cost_snapshots', 'estimates_archive'] LOOP
        EXECUTE format('ALTER TABLE estimating.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('GRANT SELECT ON estimating.%I TO nightcrew_api', t);
        EXECUTE format('CREATE POLICY members_read ON estimating.%I FOR SELECT'
                       ' TO nightcrew_api USING (current_setting(''nightcrew.is_admin'', true)'
                       ' = ''true'' OR project_id IN (SELECT estimating.acting_user_projects()))',
                       t);
    END LOOP;
END
$$;

-- Offers: members read; owners and editors (who write the estimate) record and use them.
ALTER TABLE estimating.suggestion_offers ENABLE ROW LEVEL SECURITY;
GRANT SELECT, INSERT, UPDATE ON estimating.suggestion_offers TO nightcrew_api;
CREATE POLICY members_read ON estimating.suggestion_offers FOR SELECT TO nightcrew_api
    USING (current_setting('nightcrew.is_admin', true) = 'true'
           OR project_id IN (SELECT estimating.acting_user_projects()));
CREATE POLICY writers_insert ON estimating.suggestion_offers FOR INSERT TO nightcrew_api
    WITH CHECK (current_setting('nightcrew.is_admin', true) = 'true'
                OR project_id IN (SELECT estimating.acting_user_projects(ARRAY['owner', 'editor'])));
CREATE POLICY writers_update ON estimating.suggestion_offers FOR UPDATE TO nightcrew_api
    USING (current_setting('nightcrew.is_admin', true) = 'true'
           OR project_id IN (SELECT estimating.acting_user_projects(ARRAY['owner', 'editor'])))
    WITH CHECK (current_setting('nightcrew.is_admin', true) = 'true'
                OR project_id IN (SELECT estimating.acting_user_projects(ARRAY['owner', 'editor'])));

-- Weekly reports: readable by every user; GET /reports/weekly keeps only the project rows
-- of projects the reader may see (the rest of the report is about the shared library).
ALTER TABLE estimating.weekly_reports ENABLE ROW LEVEL SECURITY;
GRANT SELECT ON estimating.weekly_reports TO nightcrew_api;
CREATE POLICY everyone_reads ON estimating.weekly_reports FOR SELECT TO nightcrew_api
    USING (true);
