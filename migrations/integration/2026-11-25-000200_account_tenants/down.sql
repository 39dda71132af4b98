DROP VIEW integration.account_tenants;
