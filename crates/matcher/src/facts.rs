//! Link changes for the `matching` exchange, queued in the transaction that writes them
//! (`matching.outbox`). The message id names the customer and the link version, so a
//! republished row is absorbed by consumers' inboxes; consumers also keep only the highest
//! version per customer.

use contracts::{v1, Contract};
use platform::amqp::Outgoing;
use platform::outbox::Outbox;
use prost::Message as _;

use crate::store::LinkWrite;

pub fn outbox() -> Outbox {
    Outbox::new("matching")
}

pub fn link_changed(tenant: &str, write: &LinkWrite<'_>, decided_at_ms: i64) -> Outgoing {
    let outcome = write.outcome;
    let fact = v1::CustomerLinkChanged {
        tenant_id: tenant.to_owned(),
        stripe_account_id: write.customer.stripe_account_id.clone(),
        stripe_customer_id: write.customer.stripe_customer_id.clone(),
        account_id_before: write.account_before.unwrap_or_default().to_owned(),
        account_id_after: outcome.account_id.clone().unwrap_or_default(),
        status: outcome.status.as_str().to_owned(),
        method: outcome.method.unwrap_or_default().to_owned(),
        confidence: outcome.confidence,
        evidence: outcome.evidence.clone(),
        csm_user_id: outcome.csm_user_id.clone().unwrap_or_default(),
        version: write.version,
        decided_at_ms,
        decided_by: outcome.decided_by.clone(),
    };
    Outgoing::protobuf(
        v1::CustomerLinkChanged::EXCHANGE,
        fact.routing_key(),
        format!(
            "link:{tenant}:{}:{}",
            write.customer.stripe_customer_id, write.version
        ),
        v1::CustomerLinkChanged::TYPE,
        tenant,
        fact.encode_to_vec(),
    )
}
