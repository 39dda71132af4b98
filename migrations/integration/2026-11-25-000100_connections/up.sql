-- Stripe connections per tenant: a restricted key or a Connect OAuth grant. The secret is
-- sealed with AES-256-GCM (key id beside it, for rotation); only a masked hint is readable.
CREATE TABLE connections (
    id            UUID PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('restricted_key', 'secret_key', 'oauth')),
    account_id    TEXT NOT NULL,
    livemode      BOOLEAN NOT NULL,
    -- e.g. "rk_test_…a1b2": enough for a person to recognise the key, useless to an attacker.
    secret_hint   TEXT NOT NULL,
    secret_sealed BYTEA NOT NULL,
    secret_key_id TEXT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
    created_by    TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at    TIMESTAMPTZ
);
-- One active connection per Stripe account per tenant.
CREATE UNIQUE INDEX connections_active_account ON connections (tenant_id, account_id) WHERE status = 'active';
CREATE INDEX connections_tenant ON connections (tenant_id, created_at DESC);
