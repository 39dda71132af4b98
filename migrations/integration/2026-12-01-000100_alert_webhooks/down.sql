DROP VIEW integration.alert_webhook_endpoints;
DROP TABLE alert_webhooks;
