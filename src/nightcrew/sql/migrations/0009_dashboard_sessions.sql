-- nightcrew 0009: server-side dashboard sessions.
--
-- The dashboard's cookie holds a random session id, never the API key; only the id's
-- sha256 is stored. A session ends at logout (revoked_at), at expires_at, or when the API
-- key it was opened with is revoked (every lookup joins the key).

CREATE TABLE nightcrew.dashboard_sessions (
    id_hash    bytea PRIMARY KEY,
    key_id     uuid NOT NULL REFERENCES nightcrew.api_keys (id) ON DELETE CASCADE,
    user_id    text NOT NULL,
    is_admin   boolean NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);
-- Login clears the key's ended sessions; revoking a key finds its sessions.
CREATE INDEX dashboard_sessions_key_idx ON nightcrew.dashboard_sessions (key_id);

-- Only the owner's statements (login, logout, the lookup) touch sessions: the API role
-- sees none.
ALTER TABLE nightcrew.dashboard_sessions ENABLE ROW LEVEL SECURITY;
