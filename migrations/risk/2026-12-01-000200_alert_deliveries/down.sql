DROP VIEW risk.csm_alerts;
CREATE VIEW risk.csm_alerts AS
SELECT a.id AS alert_id, a.tenant_id, a.csm_user_id, a.rule_id, a.delivery, a.created_at,
       s.id AS signal_id, s.kind, s.severity, s.summary, s.account_id, s.resolved_at
FROM risk.alerts a JOIN risk.signals s ON s.id = a.signal_id;
DROP TABLE alert_deliveries;
