-- Delivery of alerts to the tenant's HTTPS webhook (integration.alert_webhook_endpoints):
-- written with the alert, claimed with a lease (so a crash mid-delivery re-delivers rather
-- than loses), retried with backoff, at most once successfully per alert. Hourly-digest
-- alerts wait for the end of their hour and go out together, one POST per CSM.
CREATE TABLE alert_deliveries (
    alert_id        UUID PRIMARY KEY REFERENCES alerts (id),
    tenant_id       TEXT NOT NULL,
    csm_user_id     TEXT NOT NULL,
    digest          BOOLEAN NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'delivered', 'failed', 'skipped')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    last_status     INTEGER,
    last_error      TEXT,
    delivered_at    TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX alert_deliveries_due ON alert_deliveries (next_attempt_at) WHERE status = 'pending';

CREATE OR REPLACE VIEW risk.csm_alerts AS
SELECT a.id AS alert_id, a.tenant_id, a.csm_user_id, a.rule_id, a.delivery, a.created_at,
       s.id AS signal_id, s.kind, s.severity, s.summary, s.account_id, s.resolved_at,
       d.status AS webhook_status, d.attempts AS webhook_attempts, d.delivered_at AS webhook_delivered_at
FROM risk.alerts a
JOIN risk.signals s ON s.id = a.signal_id
LEFT JOIN risk.alert_deliveries d ON d.alert_id = a.id;
