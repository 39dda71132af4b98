//! Events for CSCX on the `risk` exchange, queued in the transaction that made the change
//! (`risk.outbox`). Message ids name the change (a signal's raise at its update time, its
//! resolution, a health version, an alert), so a republished row is absorbed downstream.

use contracts::{v1, Contract};
use platform::amqp::Outgoing;
use platform::outbox::Outbox;

use crate::alerts::NewAlert;
use crate::health::HealthChange;
use crate::signals::Signal;

pub fn outbox() -> Outbox {
    Outbox::new("risk")
}

fn message<M: Contract>(event: &M, tenant: &str, id: String) -> Outgoing {
    Outgoing::protobuf(
        M::EXCHANGE,
        event.routing_key(),
        id,
        M::TYPE,
        tenant,
        event.encode_to_vec(),
    )
}

pub fn raised(tenant: &str, signal: &Signal, csm: Option<&str>, escalated: bool) -> Outgoing {
    let event = v1::SignalRaised {
        tenant_id: tenant.to_owned(),
        signal_id: signal.id.to_string(),
        kind: signal.kind.clone(),
        severity: signal.severity.clone(),
        cause_key: signal.cause_key.clone(),
        account_id: signal.account_id.clone().unwrap_or_default(),
        csm_user_id: csm.unwrap_or_default().to_owned(),
        stripe_customer_id: signal.stripe_customer_id.clone(),
        stripe_account_id: signal.stripe_account_id.clone(),
        objects: signal.objects.clone(),
        summary: signal.summary.clone(),
        evidence_json: signal.evidence.to_string(),
        occurred_at: signal.occurred_at.timestamp(),
        raised_at_ms: signal.raised_at.timestamp_millis(),
        escalated,
    };
    let id = format!(
        "signal:{}:raised:{}",
        signal.id,
        signal.updated_at.timestamp_micros()
    );
    message(&event, tenant, id)
}

pub fn resolved(tenant: &str, signal: &Signal) -> Outgoing {
    let event = v1::SignalResolved {
        tenant_id: tenant.to_owned(),
        signal_id: signal.id.to_string(),
        kind: signal.kind.clone(),
        cause_key: signal.cause_key.clone(),
        account_id: signal.account_id.clone().unwrap_or_default(),
        stripe_customer_id: signal.stripe_customer_id.clone(),
        reason: signal.resolution.clone().unwrap_or_default(),
        raised_at_ms: signal.raised_at.timestamp_millis(),
        resolved_at_ms: signal.resolved_at.map_or(0, |t| t.timestamp_millis()),
    };
    message(&event, tenant, format!("signal:{}:resolved", signal.id))
}

pub fn health(tenant: &str, change: &HealthChange, csm: Option<&str>) -> Outgoing {
    let event = v1::HealthChanged {
        tenant_id: tenant.to_owned(),
        account_id: change.account_id.clone(),
        csm_user_id: csm.unwrap_or_default().to_owned(),
        score: i32::from(change.score.score),
        score_before: change.score_before.map_or(100, i32::from),
        band: change.score.band.as_str().to_owned(),
        band_before: change.band_before.clone().unwrap_or_default(),
        components: change
            .score
            .components
            .iter()
            .map(|c| v1::HealthComponent {
                signal_id: c.signal_id.clone(),
                kind: c.kind.as_str().to_owned(),
                cause_key: c.cause_key.as_str().to_owned(),
                severity: c.severity.as_str().to_owned(),
                weight: c.weight,
                decay: c.decay_factor,
                deduction: c.deduction,
                open: c.open,
            })
            .collect(),
        computed_at_ms: change.computed_at.timestamp_millis(),
        version: change.version,
    };
    message(
        &event,
        tenant,
        format!("health:{}:{}", change.account_id, change.version),
    )
}

pub fn alert(tenant: &str, alert: &NewAlert, signal: &Signal) -> Outgoing {
    let event = v1::AlertCreated {
        tenant_id: tenant.to_owned(),
        alert_id: alert.id.to_string(),
        signal_id: signal.id.to_string(),
        csm_user_id: alert.csm_user_id.clone(),
        rule_id: alert.rule_id.clone(),
        kind: signal.kind.clone(),
        severity: signal.severity.clone(),
        account_id: signal.account_id.clone().unwrap_or_default(),
        stripe_customer_id: signal.stripe_customer_id.clone(),
        summary: signal.summary.clone(),
        created_at_ms: alert.created_at.timestamp_millis(),
        digest: alert.digest,
    };
    message(&event, tenant, format!("alert:{}", alert.id))
}
