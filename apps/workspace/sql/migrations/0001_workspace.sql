-- The documents workspace: documents (indexed and embedded by jobs a trigger enqueues),
-- sheets of formula cells (recomputed by a job in dependency order), Yjs updates and
-- snapshots. Every row has an owner; row-level security keeps other users' rows out of
-- reach of the API role (nightcrew_api). Workers run as the table owner, which RLS does
-- not restrict (no FORCE).

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector') THEN
        RAISE EXCEPTION 'the workspace application needs the pgvector extension ("vector"), '
            'which this PostgreSQL server does not have'
            USING HINT = 'Install pgvector on the server (e.g. apt install postgresql-NN-pgvector; '
                         'Supabase and most managed Postgres ship it) or use nightcrew''s '
                         'embedded server, which has it; then run the migration again.';
    END IF;
END
$$;
CREATE EXTENSION IF NOT EXISTS vector;

-- Who acts: the API user (nightcrew.http.acting sets it), or nobody (a worker, psql).
CREATE FUNCTION workspace.acting_user() RETURNS text
LANGUAGE sql STABLE AS $$ SELECT nullif(current_setting('nightcrew.user_id', true), '') $$;

CREATE FUNCTION workspace.acting_admin() RETURNS boolean
LANGUAGE sql STABLE AS $$ SELECT current_setting('nightcrew.is_admin', true) = 'true' $$;

-- ---- documents ----------------------------------------------------------------------------

CREATE TABLE workspace.documents (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner        text NOT NULL DEFAULT workspace.acting_user()
                 CHECK (owner ~ '^[A-Za-z0-9_.@-]{1,100}$'),
    title        text NOT NULL CHECK (length(title) BETWEEN 1 AND 500),
    content      text NOT NULL DEFAULT '' CHECK (length(content) <= 1000000),
    -- What the index and the embedding were computed from: a job writes its result only
    -- while this is still the hash it read (a late job never overwrites newer content).
    content_hash bytea NOT NULL,             -- set by documents_before_write
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    search       tsvector,
    indexed_hash bytea,
    indexed_at   timestamptz,
    index_writes integer NOT NULL DEFAULT 0,
    -- A batch embedding job claims the documents it embeds (this content, for a while), so
    -- that concurrent embed jobs do not compute the same vectors twice; a retry of the same
    -- job (same id) takes its claims back at once.
    embed_claim_job   uuid,
    embed_claim_hash  bytea,
    embed_claim_until timestamptz
);
CREATE INDEX documents_owner ON workspace.documents (owner, updated_at DESC);
CREATE INDEX documents_search ON workspace.documents USING gin (search);
CREATE INDEX documents_unembedded ON workspace.documents (updated_at);

-- One vector per document and model; the dimension is stored with it so that a model of
-- another size can be added beside (re-embedding) without a schema change.
CREATE TABLE workspace.embeddings (
    document_id  uuid NOT NULL REFERENCES workspace.documents (id) ON DELETE CASCADE,
    model        text NOT NULL,
    owner        text NOT NULL,
    dimension    integer NOT NULL CHECK (dimension BETWEEN 1 AND 16000),
    content_hash bytea NOT NULL,
    embedding    vector NOT NULL CHECK (vector_dims(embedding) = dimension),
    embedded_at  timestamptz NOT NULL DEFAULT now(),
    writes       integer NOT NULL DEFAULT 1,
    PRIMARY KEY (document_id, model)
);
-- HNSW needs a fixed dimension: one partial index per size; 384 is the bundled model's.
CREATE INDEX embeddings_hnsw_384 ON workspace.embeddings
    USING hnsw ((embedding::vector(384)) vector_cosine_ops) WHERE dimension = 384;
CREATE INDEX embeddings_model ON workspace.embeddings (model, dimension);

-- The model searches use; a re-embed job fills the new model's vectors, then switches it.
CREATE TABLE workspace.embedding_model (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    model      text NOT NULL,
    dimension  integer NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now()
);

-- The content hash, whoever writes (a generated column cannot: convert_to is not
-- immutable); a change of it is a change of the document.
CREATE FUNCTION workspace.documents_before_write() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.content_hash := sha256(convert_to(NEW.title || E'\n' || NEW.content, 'UTF8'));
    IF TG_OP = 'UPDATE' AND NEW.content_hash IS DISTINCT FROM OLD.content_hash THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER documents_before_write BEFORE INSERT OR UPDATE ON workspace.documents
    FOR EACH ROW EXECUTE FUNCTION workspace.documents_before_write();

-- Every insert and every change of title or content, by any client, enqueues the index
-- and embed jobs in the same transaction. 'queued' coalesces: while a job waits, more
-- saves return it; while one runs, exactly one more waits behind it.
CREATE FUNCTION workspace.documents_enqueue_work() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.content_hash IS NOT DISTINCT FROM OLD.content_hash THEN
        RETURN NULL;
    END IF;
    PERFORM nightcrew.enqueue('workspace.index_document',
        payload => jsonb_build_object('document_id', NEW.id),
        dedupe_key => 'workspace.index:' || NEW.id, dedupe_scope => 'queued');
    PERFORM nightcrew.enqueue('workspace.embed_document',
        payload => jsonb_build_object('document_id', NEW.id),
        dedupe_key => 'workspace.embed:' || NEW.id, dedupe_scope => 'queued');
    RETURN NULL;
END
$$;
CREATE TRIGGER documents_enqueue_work AFTER INSERT OR UPDATE OF title, content
    ON workspace.documents FOR EACH ROW EXECUTE FUNCTION workspace.documents_enqueue_work();

-- ---- Yjs updates and snapshots ----------------------------------------------------------

CREATE TABLE workspace.doc_updates (
    id          bigserial PRIMARY KEY,
    document_id uuid NOT NULL REFERENCES workspace.documents (id) ON DELETE CASCADE,
    owner       text NOT NULL,
    "update"    bytea NOT NULL CHECK (length("update") BETWEEN 1 AND 10000000),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX doc_updates_document ON workspace.doc_updates (document_id, id);

CREATE TABLE workspace.doc_snapshots (
    id          bigserial PRIMARY KEY,
    document_id uuid NOT NULL REFERENCES workspace.documents (id) ON DELETE CASCADE,
    owner       text NOT NULL,
    state       bytea NOT NULL,          -- zlib-compressed Yjs update of the whole state
    updates     integer NOT NULL,        -- how many updates it merged (beside the previous)
    raw_bytes   integer NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX doc_snapshots_document ON workspace.doc_snapshots (document_id, id DESC);

-- ---- sheets -------------------------------------------------------------------------------

CREATE TABLE workspace.sheets (
    name       text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_.-]{1,100}$'),
    owner      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_recompute_job uuid,
    last_recompute_at  timestamptz
);

CREATE TABLE workspace.cells (
    sheet       text NOT NULL REFERENCES workspace.sheets (name) ON DELETE CASCADE,
    ref         text NOT NULL CHECK (ref ~ '^[A-Z]{1,3}[1-9][0-9]{0,6}$'),
    owner       text NOT NULL,
    formula     text CHECK (length(formula) <= 10000),
    input       numeric,                  -- a plain value (formula IS NULL)
    value       numeric,                  -- the computed value (or input)
    error       text,                     -- '#CYCLE', '#DIV/0!', '#VALUE!', '#NAME?' ...
    in_cycle    boolean NOT NULL DEFAULT false,
    computations integer NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    computed_at timestamptz,
    PRIMARY KEY (sheet, ref)
);

-- cell (sheet, ref) reads precedent (sheet, depends_on); ranges are expanded.
CREATE TABLE workspace.cell_dependencies (
    sheet      text NOT NULL,
    ref        text NOT NULL,
    depends_on text NOT NULL,
    PRIMARY KEY (sheet, ref, depends_on),
    FOREIGN KEY (sheet, ref) REFERENCES workspace.cells (sheet, ref) ON DELETE CASCADE
);
CREATE INDEX cell_dependencies_precedent ON workspace.cell_dependencies (sheet, depends_on);

-- Cells changed since the last recompute: the recompute job's input, deleted by it in the
-- transaction that writes the values.
CREATE TABLE workspace.cell_changes (
    id         bigserial PRIMARY KEY,
    sheet      text NOT NULL REFERENCES workspace.sheets (name) ON DELETE CASCADE,
    ref        text NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cell_changes_sheet ON workspace.cell_changes (sheet, id);

CREATE FUNCTION workspace.cells_enqueue_recompute() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.formula IS NOT DISTINCT FROM OLD.formula
            AND NEW.input IS NOT DISTINCT FROM OLD.input THEN
        RETURN NULL;
    END IF;
    INSERT INTO workspace.cell_changes (sheet, ref) VALUES (NEW.sheet, NEW.ref);
    PERFORM nightcrew.enqueue('workspace.recompute_formulas',
        payload => jsonb_build_object('sheet', NEW.sheet),
        dedupe_key => 'workspace.recompute:' || NEW.sheet, dedupe_scope => 'queued');
    RETURN NULL;
END
$$;
CREATE TRIGGER cells_enqueue_recompute AFTER INSERT OR UPDATE OF formula, input
    ON workspace.cells FOR EACH ROW EXECUTE FUNCTION workspace.cells_enqueue_recompute();

-- Create a sheet owned by the acting user unless the name is taken: as the owner, so a
-- name taken by another user is seen (and refused) without revealing the sheet itself.
CREATE FUNCTION workspace.claim_sheet(p_name text) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    me text := workspace.acting_user();
    holder text;
BEGIN
    INSERT INTO workspace.sheets (name, owner) VALUES (p_name, me)
    ON CONFLICT (name) DO NOTHING;
    SELECT owner INTO holder FROM workspace.sheets WHERE name = p_name;
    RETURN CASE WHEN holder = me OR workspace.acting_admin() THEN 'yours' ELSE 'taken' END;
END
$$;
REVOKE ALL ON FUNCTION workspace.claim_sheet(text) FROM PUBLIC;

-- ---- row-level security -------------------------------------------------------------------

GRANT USAGE ON SCHEMA workspace TO nightcrew_api;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA workspace TO nightcrew_api;
GRANT EXECUTE ON FUNCTION workspace.claim_sheet(text) TO nightcrew_api;
GRANT SELECT ON workspace.embedding_model TO nightcrew_api;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['documents', 'embeddings', 'doc_updates', 'doc_snapshots',
                             'sheets', 'cells'] LOOP
        EXECUTE format('ALTER TABLE workspace.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY own_rows ON workspace.%I TO nightcrew_api'
                       ' USING (owner = workspace.acting_user() OR workspace.acting_admin())'
                       ' WITH CHECK (owner = workspace.acting_user() OR workspace.acting_admin())',
                       t);
    END LOOP;
END
$$;
GRANT SELECT, INSERT, UPDATE, DELETE ON workspace.documents TO nightcrew_api;
GRANT SELECT ON workspace.embeddings, workspace.doc_snapshots TO nightcrew_api;
GRANT SELECT, INSERT ON workspace.doc_updates TO nightcrew_api;
GRANT SELECT ON workspace.sheets TO nightcrew_api;
GRANT SELECT, INSERT, UPDATE, DELETE ON workspace.cells TO nightcrew_api;

-- Changes and dependencies follow their sheet's visibility.
ALTER TABLE workspace.cell_dependencies ENABLE ROW LEVEL SECURITY;
ALTER TABLE workspace.cell_changes ENABLE ROW LEVEL SECURITY;
GRANT SELECT, INSERT, DELETE ON workspace.cell_dependencies TO nightcrew_api;
GRANT SELECT, INSERT ON workspace.cell_changes TO nightcrew_api;
CREATE POLICY via_sheet ON workspace.cell_dependencies TO nightcrew_api
    USING (sheet IN (SELECT name FROM workspace.sheets))
    WITH CHECK (sheet IN (SELECT name FROM workspace.sheets));
CREATE POLICY via_sheet ON workspace.cell_changes TO nightcrew_api
    USING (sheet IN (SELECT name FROM workspace.sheets))
    WITH CHECK (sheet IN (SELECT name FROM workspace.sheets));
