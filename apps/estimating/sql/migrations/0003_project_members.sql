-- Who sees what: project members, the calculations ledger and row-level security.
--
-- The API runs every /api/estimating request as nightcrew_api (nightcrew's per-user role,
-- switched to by nightcrew.http.acting together with nightcrew.user_id / nightcrew.is_admin).
-- * Project data (projects, project_rates, estimates, usage, usage_archive,
--   project_price_snapshots, calculations): visible to the project's members only; owners
--   and editors write it; owners add members. Admins see and write everything.
-- * The company's library (catalogue, items, factors, assemblies, popularity, co-occurrence,
--   catalogue/item snapshots, price alerts): readable by every user, writable by admins.
-- * Workers and the App's own connections run as the table owner, which RLS does not
--   restrict (no FORCE): background jobs keep seeing everything.

CREATE TABLE estimating.project_members (
    project_id text NOT NULL REFERENCES estimating.projects (id) ON DELETE CASCADE,
    user_id    text NOT NULL CHECK (user_id ~ '^[A-Za-z0-9_.@-]{1,100}$'),
    role       text NOT NULL CHECK (role IN ('owner', 'editor', 'viewer')),
    added_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX project_members_user ON estimating.project_members (user_id, project_id);

-- One row per cost calculation started over the API (estimating.calculate_costs): the
-- request on enqueue, the result once the job completes, so every member of the project
-- sees them (the job itself is only visible to the user who started it).
CREATE TABLE estimating.calculations (
    job_id       uuid PRIMARY KEY,
    project_id   text NOT NULL REFERENCES estimating.projects (id) ON DELETE CASCADE,
    requested_by text,
    requested_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    result       jsonb
);
CREATE INDEX calculations_project ON estimating.calculations (project_id, requested_at);

-- The projects in which the acting API user has one of ``roles``. SECURITY DEFINER: read
-- as the owner, so policies on project_members (and on the tables whose policies call this)
-- do not recurse into each other. Unset user: no projects.
CREATE FUNCTION estimating.acting_user_projects(
    roles text[] DEFAULT ARRAY['owner', 'editor', 'viewer']
) RETURNS SETOF text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT project_id FROM estimating.project_members
    WHERE user_id = current_setting('nightcrew.user_id', true) AND role = ANY(roles)
$$;

-- Create a project with the acting API user as its owner, in one step: under RLS a new
-- project is invisible until its owner row exists. Returns the project when created,
-- nothing when the id is already taken (the caller then renames or refuses).
CREATE FUNCTION estimating.create_owned_project(p_id text, p_name text)
RETURNS SETOF estimating.projects
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    owner text := nullif(current_setting('nightcrew.user_id', true), '');
    created estimating.projects;
BEGIN
    INSERT INTO estimating.projects (id, name) VALUES (p_id, p_name)
    ON CONFLICT (id) DO NOTHING
    RETURNING * INTO created;
    IF created.id IS NULL THEN
        RETURN;
    END IF;
    IF owner IS NOT NULL THEN
        INSERT INTO estimating.project_members (project_id, user_id, role)
        VALUES (p_id, owner, 'owner');
    END IF;
    RETURN NEXT created;
END
$$;

REVOKE ALL ON FUNCTION estimating.acting_user_projects(text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION estimating.create_owned_project(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION estimating.acting_user_projects(text[]) TO nightcrew_api;
GRANT EXECUTE ON FUNCTION estimating.create_owned_project(text, text) TO nightcrew_api;

-- ---- row-level security ------------------------------------------------------------------

GRANT USAGE ON SCHEMA estimating TO nightcrew_api;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA estimating TO nightcrew_api;

-- The library: everyone reads, admins write.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['catalogue', 'catalogue_rate_history', 'items', 'item_factors',
                             'assemblies', 'assembly_items', 'item_popularity',
                             'item_cooccurrence', 'catalogue_price_snapshots',
                             'item_price_snapshots', 'price_alerts'] LOOP
        EXECUTE format('ALTER TABLE estimating.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON estimating.%I TO nightcrew_api', t);
        EXECUTE format('CREATE POLICY library_read ON estimating.%I FOR SELECT TO nightcrew_api'
                       ' USING (true)', t);
        EXECUTE format('CREATE POLICY library_admin ON estimating.%I TO nightcrew_api'
                       ' USING (current_setting(''nightcrew.is_admin'', true) = ''true'')'
                       ' WITH CHECK (current_setting(''nightcrew.is_admin'', true) = ''true'')',
                       t);
    END LOOP;
END
$$;

-- Project data: members read, owners and editors write (the seed's policy, generalised:
-- project_id IN (the projects the acting user is a member of)).
DO $$
DECLARE
    t text;
    admin constant text := 'current_setting(''nightcrew.is_admin'', true) = ''true''';
    members constant text := 'project_id IN (SELECT estimating.acting_user_projects())';
    writers constant text :=
        'project_id IN (SELECT estimating.acting_user_projects(ARRAY[''owner'', ''editor'']))';
BEGIN
    FOREACH t IN ARRAY ARRAY['project_rates', 'estimates', 'usage', 'usage_archive',
                             'project_price_snapshots'] LOOP
        EXECUTE format('ALTER TABLE estimating.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE ON estimating.%I TO nightcrew_api', t);
        EXECUTE format('CREATE POLICY members_read ON estimating.%I FOR SELECT TO nightcrew_api'
                       ' USING (%s OR %s)', t, admin, members);
        EXECUTE format('CREATE POLICY writers_insert ON estimating.%I FOR INSERT'
                       ' TO nightcrew_api WITH CHECK (%s OR %s)', t, admin, writers);
        EXECUTE format('CREATE POLICY writers_update ON estimating.%I FOR UPDATE'
                       ' TO nightcrew_api USING (%s OR %s) WITH CHECK (%s OR %s)',
                       t, admin, writers, admin, writers);
    END LOOP;
END
$$;

ALTER TABLE estimating.projects ENABLE ROW LEVEL SECURITY;
GRANT SELECT, UPDATE ON estimating.projects TO nightcrew_api;  -- created by the function
CREATE POLICY members_read ON estimating.projects FOR SELECT TO nightcrew_api
    USING (current_setting('nightcrew.is_admin', true) = 'true'
           OR id IN (SELECT estimating.acting_user_projects()));
CREATE POLICY writers_update ON estimating.projects FOR UPDATE TO nightcrew_api
    USING (current_setting('nightcrew.is_admin', true) = 'true'
           OR id IN (SELECT estimating.acting_user_projects(ARRAY['owner', 'editor'])))
    WITH CHECK (current_setting('nightcrew.is_admin', true) = 'true'
                OR id IN (SELECT estimating.acting_user_projects(ARRAY['owner', 'editor'])));

-- Members see their projects' members; owners add members and change roles.
ALTER TABLE estimating.project_members ENABLE ROW LEVEL SECURITY;
GRANT SELECT, INSERT, UPDATE ON estimating.project_members TO nightcrew_api;
CREATE POLICY members_read ON estimating.project_members FOR SELECT TO nightcrew_api
    USING (current_setting('nightcrew.is_admin', true) = 'true'
           OR project_id IN (SELECT estimating.acting_user_projects()));
CREATE POLICY owners_insert ON estimating.project_members FOR INSERT TO nightcrew_api
    WITH CHECK (current_setting('nightcrew.is_admin', true) = 'true'
                OR project_id IN (SELECT estimating.acting_user_projects(ARRAY['owner'])));
CREATE POLICY owners_update ON estimating.project_members FOR UPDATE TO nightcrew_api
    USING (current_setting('nightcrew.is_admin', true) = 'true'
           OR project_id IN (SELECT estimating.acting_user_projects(ARRAY['owner'])))
    WITH CHECK (current_setting('nightcrew.is_admin', true) = 'true'
                OR project_id IN (SELECT estimating.acting_user_projects(ARRAY['owner'])));

-- Calculations: any member may start one (it only reads the project) and sees them all.
ALTER TABLE estimating.calculations ENABLE ROW LEVEL SECURITY;
GRANT SELECT, INSERT ON estimating.calculations TO nightcrew_api;
CREATE POLICY members_read ON estimating.calculations FOR SELECT TO nightcrew_api
    USING (current_setting('nightcrew.is_admin', true) = 'true'
           OR project_id IN (SELECT estimating.acting_user_projects()));
CREATE POLICY members_insert ON estimating.calculations FOR INSERT TO nightcrew_api
    WITH CHECK (requested_by = current_setting('nightcrew.user_id', true)
                AND (current_setting('nightcrew.is_admin', true) = 'true'
                     OR project_id IN (SELECT estimating.acting_user_projects())));
