-- Connect OAuth `state` values: unguessable, single-use, short-lived, bound to the tenant and
-- admin who started the flow. Only a SHA-256 of the state is stored.
CREATE TABLE oauth_states (
    state_hash TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ
);
