-- Prospecting campaigns, the businesses they found (leads are the qualified ones) and
-- every paid provider call with its cost. Money is numeric (exact dollars).
-- Row-level security: under nightcrew_api (the HTTP API, the dashboard) a user sees and
-- creates only its own rows; the worker writes as the table owner.

CREATE TABLE prospecting.campaigns (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id         text NOT NULL DEFAULT nullif(current_setting('nightcrew.user_id', true), '')
                    CHECK (user_id <> ''),
    job_id          uuid,
    business_type   text NOT NULL CHECK (business_type <> ''),
    location        text NOT NULL CHECK (location <> ''),
    max_results     integer NOT NULL CHECK (max_results BETWEEN 1 AND 100),
    budget          numeric(12, 4) CHECK (budget >= 0),
    budget_exhausted boolean NOT NULL DEFAULT false,
    summary         text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);
CREATE INDEX campaigns_user ON prospecting.campaigns (user_id, created_at DESC);

-- One row per business found; position is its rank in the search. The enrichment
-- columns are set by the paid calls that found them (finder_done / verifier_done say
-- the call was made, so a resumed campaign never pays for it again).
CREATE TABLE prospecting.businesses (
    campaign_id     uuid NOT NULL REFERENCES prospecting.campaigns (id) ON DELETE CASCADE,
    place_id        text NOT NULL,
    user_id         text NOT NULL,
    position        integer NOT NULL,
    name            text NOT NULL,
    address         text,
    website         text,
    domain          text,
    phone           text,
    rating          numeric(3, 1),
    reviews         integer,
    base_score      numeric(6, 2),
    qualified       boolean,
    email           text,
    email_status    text,
    finder_done     boolean NOT NULL DEFAULT false,
    verifier_done   boolean NOT NULL DEFAULT false,
    confidence      numeric(6, 2),
    PRIMARY KEY (campaign_id, place_id)
);

-- Every paid call: recorded in the same transaction as its result. The unique subject
-- (a search page, a domain, an email) is what makes a second payment impossible.
CREATE TABLE prospecting.calls (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id     uuid NOT NULL REFERENCES prospecting.campaigns (id) ON DELETE CASCADE,
    user_id         text NOT NULL,
    provider        text NOT NULL CHECK (provider IN ('places', 'finder', 'verifier')),
    subject         text NOT NULL,
    cost            numeric(12, 4) NOT NULL CHECK (cost >= 0),
    called_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (campaign_id, provider, subject)
);

GRANT USAGE ON SCHEMA prospecting TO nightcrew_api;
GRANT SELECT, INSERT ON prospecting.campaigns TO nightcrew_api;
GRANT SELECT ON prospecting.businesses, prospecting.calls TO nightcrew_api;

ALTER TABLE prospecting.campaigns ENABLE ROW LEVEL SECURITY;
ALTER TABLE prospecting.businesses ENABLE ROW LEVEL SECURITY;
ALTER TABLE prospecting.calls ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_read ON prospecting.campaigns FOR SELECT TO nightcrew_api
    USING (user_id = current_setting('nightcrew.user_id', true));
CREATE POLICY own_insert ON prospecting.campaigns FOR INSERT TO nightcrew_api
    WITH CHECK (user_id = current_setting('nightcrew.user_id', true));
CREATE POLICY own_read ON prospecting.businesses FOR SELECT TO nightcrew_api
    USING (user_id = current_setting('nightcrew.user_id', true));
CREATE POLICY own_read ON prospecting.calls FOR SELECT TO nightcrew_api
    USING (user_id = current_setting('nightcrew.user_id', true));
