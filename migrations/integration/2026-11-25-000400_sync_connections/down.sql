DROP VIEW integration.sync_connections;
