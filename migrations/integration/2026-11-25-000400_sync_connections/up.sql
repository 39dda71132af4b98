-- Read model for the sync worker: which Stripe connections exist and their sealed secrets
-- (the worker opens them with the same master keys and associated data, see
-- platform::crypto). Other services read another schema only through views its owner
-- defines, so the table can change without breaking them. Revoked connections stay visible
-- so a running sync can see the revocation and stop.
CREATE VIEW integration.sync_connections AS
SELECT id, tenant_id, kind, account_id, livemode, secret_sealed, secret_key_id, status, created_at
FROM integration.connections;
