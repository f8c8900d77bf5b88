-- The estimating library: catalogue, library items and their factors, assemblies,
-- projects with dated rate overrides, estimates and the usage log.
-- Money and quantities are numeric (exact); rates are per catalogue unit.

CREATE TABLE estimating.catalogue (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('material', 'labour', 'equipment')),
    code        text NOT NULL UNIQUE CHECK (code <> ''),
    name        text NOT NULL,
    unit        text NOT NULL,
    rate        numeric(14, 4) NOT NULL CHECK (rate >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Dated catalogue rates: what price snapshots of past days read. Every rate change
-- (creation, bulk update) appends a row.
CREATE TABLE estimating.catalogue_rate_history (
    catalogue_id    integer NOT NULL REFERENCES estimating.catalogue (id) ON DELETE CASCADE,
    effective_from  date NOT NULL,
    rate            numeric(14, 4) NOT NULL CHECK (rate >= 0),
    PRIMARY KEY (catalogue_id, effective_from)
);

CREATE TABLE estimating.items (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code        text NOT NULL UNIQUE CHECK (code <> ''),
    name        text NOT NULL,
    unit        text NOT NULL,
    category    text NOT NULL DEFAULT 'general',
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per (item, catalogue entry); the columns used depend on the entry's kind:
-- material: quantity_per_unit, wastage_percentage
-- labour: hours_per_unit, productivity_factor, crew_size
-- equipment: hours_per_unit, utilization_factor
CREATE TABLE estimating.item_factors (
    item_id             integer NOT NULL REFERENCES estimating.items (id) ON DELETE CASCADE,
    catalogue_id        integer NOT NULL REFERENCES estimating.catalogue (id),
    quantity_per_unit   numeric(14, 6) CHECK (quantity_per_unit >= 0),
    wastage_percentage  numeric(8, 4) CHECK (wastage_percentage >= 0),
    hours_per_unit      numeric(14, 6) CHECK (hours_per_unit >= 0),
    productivity_factor numeric(10, 4) CHECK (productivity_factor > 0),
    crew_size           numeric(10, 4) CHECK (crew_size > 0),
    utilization_factor  numeric(10, 4) CHECK (utilization_factor >= 0),
    PRIMARY KEY (item_id, catalogue_id)
);
CREATE INDEX item_factors_catalogue ON estimating.item_factors (catalogue_id);

-- Assemblies form a tree (parent_id); each holds library items with quantities.
CREATE TABLE estimating.assemblies (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code        text NOT NULL UNIQUE,
    name        text NOT NULL,
    parent_id   integer REFERENCES estimating.assemblies (id) ON DELETE CASCADE
);
CREATE INDEX assemblies_parent ON estimating.assemblies (parent_id);

CREATE TABLE estimating.assembly_items (
    assembly_id integer NOT NULL REFERENCES estimating.assemblies (id) ON DELETE CASCADE,
    item_id     integer NOT NULL REFERENCES estimating.items (id),
    quantity    numeric(14, 4) NOT NULL CHECK (quantity >= 0),
    PRIMARY KEY (assembly_id, item_id)
);

CREATE TABLE estimating.projects (
    id          text PRIMARY KEY CHECK (id <> ''),
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE estimating.project_rates (
    project_id      text NOT NULL REFERENCES estimating.projects (id) ON DELETE CASCADE,
    catalogue_id    integer NOT NULL REFERENCES estimating.catalogue (id),
    effective_from  date NOT NULL,
    rate            numeric(14, 4) NOT NULL CHECK (rate >= 0),
    PRIMARY KEY (project_id, catalogue_id, effective_from)
);
CREATE INDEX project_rates_catalogue ON estimating.project_rates (catalogue_id, effective_from);

-- An estimate exists once a usage row names it; the integer key keeps the usage table
-- narrow and the co-occurrence self-join cheap.
CREATE TABLE estimating.estimates (
    key         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id  text NOT NULL REFERENCES estimating.projects (id) ON DELETE CASCADE,
    estimate_id text NOT NULL CHECK (estimate_id <> ''),
    UNIQUE (project_id, estimate_id)
);

CREATE TABLE estimating.usage (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    item_id      integer NOT NULL REFERENCES estimating.items (id),
    project_id   text NOT NULL,
    estimate_key bigint NOT NULL,
    quantity     numeric(14, 4) NOT NULL CHECK (quantity >= 0),
    used_at      timestamptz NOT NULL DEFAULT now()
);
-- The aggregation reads the last 60 days by time; covering columns avoid heap visits.
CREATE INDEX usage_used_at ON estimating.usage (used_at)
    INCLUDE (item_id, estimate_key, project_id, quantity);
CREATE INDEX usage_item ON estimating.usage (item_id, used_at);

CREATE TABLE estimating.usage_archive (
    id           bigint PRIMARY KEY,
    item_id      integer NOT NULL,
    project_id   text NOT NULL,
    estimate_key bigint NOT NULL,
    quantity     numeric(14, 4) NOT NULL,
    used_at      timestamptz NOT NULL,
    archived_at  timestamptz NOT NULL DEFAULT now()
);

-- ---- precomputed by estimating.aggregate_popularity ------------------------------------

CREATE TABLE estimating.item_popularity (
    item_id          integer PRIMARY KEY REFERENCES estimating.items (id) ON DELETE CASCADE,
    usage_count_30d  integer NOT NULL,
    unique_projects  integer NOT NULL,
    avg_quantity     numeric(14, 4) NOT NULL,
    previous_count   integer NOT NULL,
    trend            text NOT NULL CHECK (trend IN ('up', 'down', 'flat')),
    trend_pct        numeric(10, 2),
    popularity_score numeric(5, 2) NOT NULL,
    estimate_count   integer NOT NULL,
    computed_at      timestamptz NOT NULL
);

CREATE TABLE estimating.item_cooccurrence (
    item_id         integer NOT NULL REFERENCES estimating.items (id) ON DELETE CASCADE,
    other_item_id   integer NOT NULL REFERENCES estimating.items (id) ON DELETE CASCADE,
    together_count  integer NOT NULL,
    confidence_pct  numeric(5, 2) NOT NULL CHECK (confidence_pct BETWEEN 0 AND 100),
    computed_at     timestamptz NOT NULL,
    PRIMARY KEY (item_id, other_item_id)
);

-- ---- price snapshots (estimating.capture_price_snapshot) -------------------------------

CREATE TABLE estimating.catalogue_price_snapshots (
    snapshot_date     date NOT NULL,
    catalogue_id      integer NOT NULL REFERENCES estimating.catalogue (id) ON DELETE CASCADE,
    catalogue_rate    numeric(14, 4) NOT NULL,
    avg_project_rate  numeric(14, 4),
    min_project_rate  numeric(14, 4),
    max_project_rate  numeric(14, 4),
    volatility        numeric(10, 6),
    project_rate_count integer NOT NULL,
    item_count        integer NOT NULL,
    PRIMARY KEY (catalogue_id, snapshot_date)
);
CREATE INDEX catalogue_price_snapshots_date ON estimating.catalogue_price_snapshots (snapshot_date);

CREATE TABLE estimating.item_price_snapshots (
    snapshot_date  date NOT NULL,
    item_id        integer NOT NULL REFERENCES estimating.items (id) ON DELETE CASCADE,
    unit_price     numeric(14, 4) NOT NULL,
    material       numeric(14, 4) NOT NULL,
    labour         numeric(14, 4) NOT NULL,
    equipment      numeric(14, 4) NOT NULL,
    PRIMARY KEY (item_id, snapshot_date)
);
CREATE INDEX item_price_snapshots_date ON estimating.item_price_snapshots (snapshot_date);

CREATE TABLE estimating.project_price_snapshots (
    snapshot_date  date NOT NULL,
    project_id     text NOT NULL REFERENCES estimating.projects (id) ON DELETE CASCADE,
    item_id        integer NOT NULL REFERENCES estimating.items (id) ON DELETE CASCADE,
    unit_price     numeric(14, 4) NOT NULL,
    material       numeric(14, 4) NOT NULL,
    labour         numeric(14, 4) NOT NULL,
    equipment      numeric(14, 4) NOT NULL,
    PRIMARY KEY (project_id, item_id, snapshot_date)
);
CREATE INDEX project_price_snapshots_date ON estimating.project_price_snapshots (snapshot_date);

-- One alert per catalogue entry and period: the daily snapshot must not repeat it.
CREATE TABLE estimating.price_alerts (
    catalogue_id  integer NOT NULL REFERENCES estimating.catalogue (id) ON DELETE CASCADE,
    period_start  date NOT NULL,
    previous_rate numeric(14, 4) NOT NULL,
    current_rate  numeric(14, 4) NOT NULL,
    change_pct    numeric(10, 2) NOT NULL,
    message       text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (catalogue_id, period_start)
);

-- ---- bulk updates and reports -----------------------------------------------------------

-- Each catalogue entry a bulk update job changed, once: the primary key makes a resumed
-- job unable to change an entry twice even if its checkpoint were lost.
CREATE TABLE estimating.bulk_price_changes (
    job_id        uuid NOT NULL,
    catalogue_id  integer NOT NULL REFERENCES estimating.catalogue (id) ON DELETE CASCADE,
    old_rate      numeric(14, 4) NOT NULL,
    new_rate      numeric(14, 4) NOT NULL,
    changed_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, catalogue_id)
);

CREATE TABLE estimating.weekly_reports (
    week_start  date PRIMARY KEY,
    report      jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
