//! Builders shared by the risk tests.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};

use crate::ids::{StripeCustomerId, StripeInvoiceId, StripePaymentMethodId, StripeSubscriptionId};
use crate::money::Currency;
use crate::movement::MovementKind;
use crate::mrr::SubscriptionStatus;

use super::*;

pub(crate) fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
}

pub(crate) fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

pub(crate) fn customer() -> StripeCustomerId {
    StripeCustomerId::parse("cus_1").unwrap()
}

pub(crate) fn sub_id() -> StripeSubscriptionId {
    StripeSubscriptionId::parse("sub_1").unwrap()
}

pub(crate) fn pm(id: &str) -> StripePaymentMethodId {
    StripePaymentMethodId::parse(id).unwrap()
}

/// An open, unattempted 490.00 USD renewal invoice.
pub(crate) fn invoice() -> InvoiceState {
    InvoiceState {
        invoice_id: StripeInvoiceId::parse("in_123").unwrap(),
        customer_id: customer(),
        subscription_id: Some(sub_id()),
        status: InvoiceStatus::Open,
        amount_due: 49_000,
        amount_remaining: 49_000,
        currency: Currency::USD,
        attempt_count: 0,
        next_payment_attempt: None,
        due_date: None,
        paid_at: None,
        first_failed_at: None,
        last_failure_code: None,
        last_failure_message: None,
        requires_action: false,
        billing_reason: Some("subscription_cycle".to_owned()),
    }
}

/// `invoice()` after `attempts` failed attempts, the first on 2026-01-01
/// 10:00, with a retry scheduled on 2026-01-08 10:00.
pub(crate) fn failed_invoice(attempts: u32) -> InvoiceState {
    InvoiceState {
        attempt_count: attempts,
        next_payment_attempt: Some(at(2026, 1, 8, 10)),
        first_failed_at: Some(at(2026, 1, 1, 10)),
        last_failure_code: Some("card_declined".to_owned()),
        last_failure_message: Some("Your card was declined.".to_owned()),
        ..invoice()
    }
}

/// An active 1,000.00 USD, 10-seat subscription changing nothing.
pub(crate) fn change() -> SubscriptionChange {
    SubscriptionChange {
        subscription_id: sub_id(),
        customer_id: customer(),
        status_before: Some(SubscriptionStatus::Active),
        status_after: SubscriptionStatus::Active,
        plan_before: Some("price_pro".to_owned()),
        plan_after: Some("price_pro".to_owned()),
        quantity_before: Some(10),
        quantity_after: Some(10),
        mrr_before: 100_000,
        mrr_after: 100_000,
        currency: Currency::USD,
        movement: MovementKind::Unchanged,
        cancel_at_period_end: false,
        current_period_end: Some(at(2026, 2, 1, 0)),
        canceled_at: None,
        occurred_at: at(2026, 1, 5, 10),
    }
}

/// The default visa ending 4242, expiring 12/2026.
pub(crate) fn card() -> CardState {
    CardState {
        payment_method_id: pm("pm_1"),
        customer_id: customer(),
        brand: "visa".to_owned(),
        last4: "4242".to_owned(),
        exp_month: 12,
        exp_year: 2026,
        is_default: true,
        detached: false,
    }
}

/// A 490.00 USD dispute needing a response by 2026-01-20.
pub(crate) fn dispute(status: DisputeStatus) -> DisputeState {
    DisputeState {
        dispute_id: DisputeId::parse("dp_1").unwrap(),
        charge_id: "ch_1".to_owned(),
        customer_id: customer(),
        amount: 49_000,
        currency: Currency::USD,
        reason: "fraudulent".to_owned(),
        status,
        evidence_due_by: Some(at(2026, 1, 20, 23)),
    }
}

/// `(kind, key, severity)` of every raise, `(kind, key, reason)` of every resolve.
pub(crate) fn raised(changes: &[SignalChange]) -> Vec<(SignalKind, String, Severity)> {
    changes
        .iter()
        .filter_map(SignalChange::as_raise)
        .map(|d| (d.kind, d.cause_key.to_string(), d.severity))
        .collect()
}

pub(crate) fn resolved(changes: &[SignalChange]) -> Vec<(SignalKind, String, ResolveReason)> {
    changes
        .iter()
        .filter_map(|c| match c {
            SignalChange::Resolve {
                kind,
                cause_key,
                reason,
            } => Some((*kind, cause_key.to_string(), *reason)),
            SignalChange::Raise(_) => None,
        })
        .collect()
}

pub(crate) fn draft(changes: &[SignalChange], kind: SignalKind) -> &SignalDraft {
    changes
        .iter()
        .filter_map(SignalChange::as_raise)
        .find(|d| d.kind == kind)
        .unwrap_or_else(|| panic!("no {kind} raised in {changes:#?}"))
}
