//! Domain facts for the `billing` exchange, built from the rows just written and queued in
//! the same transaction (billing.outbox). A message id names the object and the cause (the
//! event, or the API read), so a redelivered cause can never yield a second fact; consumers
//! still treat facts as states (idempotent), since two causes may carry the same state.

use contracts::{v1, Contract};
use diesel_async::AsyncPgConnection;
use platform::amqp::Outgoing;
use platform::outbox::Outbox;

use crate::rows::{
    AttemptRow, CustomerRow, DisputeRow, InvoiceRow, PaymentMethodRow, SubscriptionRow,
};
use crate::store::ChangeRow;
use crate::subscriptions::Source;

pub fn outbox() -> Outbox {
    Outbox::new("billing")
}

fn context(tenant: &str, account: &str, source: &Source) -> Option<v1::FactContext> {
    Some(v1::FactContext {
        tenant_id: tenant.to_owned(),
        account_id: account.to_owned(),
        occurred_at: source.created,
        source: source.kind.to_owned(),
        event_id: source.event_id.clone().unwrap_or_default(),
    })
}

/// What makes a fact unique: the event that caused it, or the read (kind + time).
fn cause(source: &Source) -> String {
    match &source.event_id {
        Some(event) => event.clone(),
        None => format!("{}@{}", source.kind, source.created),
    }
}

fn secs(t: Option<chrono::DateTime<chrono::Utc>>) -> i64 {
    t.map_or(0, |t| t.timestamp())
}

fn message<M: Contract>(fact: &M, tenant: &str, id: String) -> Outgoing {
    Outgoing::protobuf(
        M::EXCHANGE,
        fact.routing_key(),
        id,
        M::TYPE,
        tenant,
        fact.encode_to_vec(),
    )
}

pub fn customer(row: &CustomerRow, source: &Source) -> Outgoing {
    let metadata = row
        .metadata
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let fact = v1::CustomerUpserted {
        context: context(&row.tenant_id, &row.account_id, source),
        stripe_customer_id: row.stripe_customer_id.clone(),
        email: row.email.clone().unwrap_or_default(),
        name: row.name.clone().unwrap_or_default(),
        metadata,
        currency: row.currency.clone().unwrap_or_default(),
        delinquent: row.delinquent,
        deleted: false,
        default_payment_method: row.default_payment_method.clone().unwrap_or_default(),
    };
    let id = format!(
        "customer:{}:{}:{}",
        row.account_id,
        row.stripe_customer_id,
        cause(source)
    );
    message(&fact, &row.tenant_id, id)
}

pub fn subscription(row: &SubscriptionRow, change: &ChangeRow, source: &Source) -> Outgoing {
    let fact = v1::SubscriptionChanged {
        context: context(&row.tenant_id, &row.account_id, source),
        stripe_customer_id: row.stripe_customer_id.clone(),
        stripe_subscription_id: row.stripe_subscription_id.clone(),
        movement: change.movement.clone(),
        status_before: change.status_before.clone().unwrap_or_default(),
        status_after: change.status_after.clone(),
        plan_before: change.plan_before.clone().unwrap_or_default(),
        plan_after: change.plan_after.clone().unwrap_or_default(),
        quantity_before: change.quantity_before.unwrap_or(0),
        quantity_after: change.quantity_after.unwrap_or(0),
        mrr_before: change.mrr_before_cents,
        mrr_after: change.mrr_after_cents,
        currency: row.currency.clone(),
        cancel_at_period_end: row.cancel_at_period_end,
        current_period_end: secs(row.current_period_end),
        canceled_at: secs(row.canceled_at),
    };
    let id = format!(
        "subscription:{}:{}:{}",
        row.account_id,
        row.stripe_subscription_id,
        cause(source)
    );
    message(&fact, &row.tenant_id, id)
}

pub fn invoice(row: &InvoiceRow, source: &Source) -> Outgoing {
    let fact = v1::InvoiceUpdated {
        context: context(&row.tenant_id, &row.account_id, source),
        stripe_customer_id: row.stripe_customer_id.clone(),
        stripe_invoice_id: row.stripe_invoice_id.clone(),
        stripe_subscription_id: row.stripe_subscription_id.clone().unwrap_or_default(),
        status: row.status.clone().unwrap_or_default(),
        amount_due: row.amount_cents,
        amount_paid: row.amount_paid,
        amount_remaining: row.amount_remaining,
        currency: row.currency.clone(),
        due_date: secs(row.due_date),
        paid_at: secs(row.paid_at),
        attempt_count: i64::from(row.attempt_count),
        next_payment_attempt: secs(row.next_payment_attempt),
        billing_reason: row.billing_reason.clone().unwrap_or_default(),
    };
    let id = format!(
        "invoice:{}:{}:{}",
        row.account_id,
        row.stripe_invoice_id,
        cause(source)
    );
    message(&fact, &row.tenant_id, id)
}

pub fn attempt(row: &AttemptRow, source: &Source) -> Outgoing {
    let fact = v1::PaymentAttempted {
        context: context(&row.tenant_id, &row.account_id, source),
        stripe_customer_id: row.stripe_customer_id.clone().unwrap_or_default(),
        charge_id: row.charge_id.clone(),
        payment_intent_id: row.payment_intent_id.clone().unwrap_or_default(),
        stripe_invoice_id: row.stripe_invoice_id.clone().unwrap_or_default(),
        succeeded: row.outcome == "succeeded",
        amount: row.amount,
        currency: row.currency.clone(),
        failure_code: row.failure_code.clone().unwrap_or_default(),
        failure_message: row.failure_message.clone().unwrap_or_default(),
        attempted_at: row.attempted_at.timestamp(),
    };
    // A charge's outcome is final once it is not pending: one fact per charge and outcome.
    let id = format!(
        "charge:{}:{}:{}",
        row.account_id, row.charge_id, row.outcome
    );
    message(&fact, &row.tenant_id, id)
}

pub fn payment_method(row: &PaymentMethodRow, source: &Source) -> Outgoing {
    payment_method_fact(row, source, false)
}

/// The card left its customer (`payment_method.detached`): consumers drop it.
pub fn payment_method_detached(row: &PaymentMethodRow, source: &Source) -> Outgoing {
    payment_method_fact(row, source, true)
}

fn payment_method_fact(row: &PaymentMethodRow, source: &Source, detached: bool) -> Outgoing {
    let fact = v1::PaymentMethodUpdated {
        context: context(&row.tenant_id, &row.account_id, source),
        stripe_customer_id: row.stripe_customer_id.clone().unwrap_or_default(),
        payment_method_id: row.payment_method_id.clone(),
        brand: row.card_brand.clone().unwrap_or_default(),
        last4: row.card_last4.clone().unwrap_or_default(),
        exp_month: row.exp_month.map_or(0, i32::from),
        exp_year: row.exp_year.map_or(0, i32::from),
        detached,
    };
    let id = format!(
        "payment_method:{}:{}:{}{}",
        row.account_id,
        row.payment_method_id,
        cause(source),
        if detached { ":detached" } else { "" }
    );
    message(&fact, &row.tenant_id, id)
}

/// A dispute's new state (`dispute.changed`), or `None` while its charge's customer is
/// unknown: a fact no customer owns is one no consumer can attribute.
pub fn dispute(row: &DisputeRow, source: &Source) -> Option<Outgoing> {
    let customer = row.stripe_customer_id.clone()?;
    let fact = v1::DisputeChanged {
        context: context(&row.tenant_id, &row.account_id, source),
        stripe_customer_id: customer,
        dispute_id: row.dispute_id.clone(),
        charge_id: row.charge_id.clone(),
        payment_intent_id: row.payment_intent_id.clone().unwrap_or_default(),
        amount: row.amount,
        currency: row.currency.clone(),
        reason: row.reason.clone(),
        status: row.status.clone(),
        evidence_due_by: secs(row.evidence_due_by),
        created: row.created_at.timestamp(),
    };
    let id = format!(
        "dispute:{}:{}:{}",
        row.account_id,
        row.dispute_id,
        cause(source)
    );
    Some(message(&fact, &row.tenant_id, id))
}

/// Queues facts in the caller's transaction.
pub async fn enqueue(conn: &mut AsyncPgConnection, facts: &[Outgoing]) -> diesel::QueryResult<()> {
    outbox().enqueue(conn, facts).await
}
