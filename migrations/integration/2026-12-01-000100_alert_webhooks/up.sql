-- Where a tenant receives its CSM alerts over HTTPS, and the secret the risk engine signs them
-- with (AES-256-GCM sealed like Stripe secrets; associated data = alert_webhook_context).
CREATE TABLE alert_webhooks (
    tenant_id     TEXT PRIMARY KEY,
    url           TEXT NOT NULL CHECK (url ~ '^https?://'),
    secret_sealed BYTEA NOT NULL,
    secret_key_id TEXT NOT NULL,
    -- Shown instead of the secret: its last four characters.
    secret_hint   TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Read model for the risk engine (it opens the secret with the shared master keys).
CREATE VIEW integration.alert_webhook_endpoints AS
SELECT tenant_id, url, secret_sealed, secret_key_id, updated_at FROM integration.alert_webhooks;
