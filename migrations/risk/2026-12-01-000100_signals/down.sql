DROP VIEW risk.revenue_at_risk, risk.csm_alert_rules, risk.csm_alerts, risk.account_health, risk.account_signals;
DROP TABLE outbox, alerts, alert_rules, health, signals, payment_failures, subscriptions, invoices, cards, customers, links;
