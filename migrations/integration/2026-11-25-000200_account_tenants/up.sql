-- Read model for other services (ingress routes Connect events by account): which tenant an
-- active Stripe connection belongs to. Other schemas read this view, never the table.
CREATE VIEW integration.account_tenants AS
SELECT account_id, tenant_id
FROM integration.connections
WHERE status = 'active';
