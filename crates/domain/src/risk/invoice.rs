//! Signals from an invoice: payment failed, dunning, payment action
//! required, invoice uncollectible.
//!
//! | invoice | payment_failed | dunning_in_progress | payment_action_required | invoice_uncollectible |
//! |---|---|---|---|---|
//! | draft | – | – | – | – |
//! | open, not attempted | – | – | – | – |
//! | open, first attempt awaits authentication | – | – | raise | – |
//! | open, attempted, unpaid | raise | raise (`retry_n` / `retries_exhausted`) | raise if `requires_action`, else resolve | – |
//! | uncollectible, unpaid | resolve | resolve | resolve | raise |
//! | paid, or nothing remaining | resolve | resolve | resolve | resolve |
//! | void | resolve | resolve | resolve | resolve |
//!
//! All four share the cause key `invoice:<id>`.
//!
//! Severity of a failed payment: Medium; High from
//! [`RiskConfig::payment_failed_high_attempts`] attempts (2); Critical from
//! [`RiskConfig::payment_failed_critical_attempts`] (3); one step up for a
//! high-value invoice ([`RiskConfig::high_value_amounts`]); Critical once
//! the payment is [`RiskConfig::delinquent_critical_days`] late (30).
//!
//! A first attempt that only waits for the customer to authenticate
//! (`requires_action`, no failure code other than `authentication_required`)
//! is not a failure yet: it raises only payment action required, so routine
//! SCA on a new European card does not look like a failing customer.
//!
//! Marking an invoice uncollectible resolves the failure and dunning signals
//! (Stripe stops retrying; the write-off is the signal now) rather than
//! keeping both open, which would count the same money twice in the health
//! score and alert twice.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{StripeCustomerId, StripeInvoiceId, StripeSubscriptionId};
use crate::money::{Currency, Money};

use super::change::{
    DunningStage, Evidence, InvoiceEvidence, ResolveReason, SignalChange, SignalDraft,
};
use super::{CauseKey, RiskConfig, Severity, SignalKind};

/// Stripe's invoice `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    /// `draft`: not finalized, nothing to pay yet.
    Draft,
    /// `open`: finalized and awaiting payment.
    Open,
    /// `paid`.
    Paid,
    /// `uncollectible`: written off; may still be paid later.
    Uncollectible,
    /// `void`: canceled, nothing to pay.
    Void,
}

impl InvoiceStatus {
    /// Every status, in declaration order.
    pub const ALL: [InvoiceStatus; 5] = [
        Self::Draft,
        Self::Open,
        Self::Paid,
        Self::Uncollectible,
        Self::Void,
    ];

    /// Stripe's spelling, e.g. `"uncollectible"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Open => "open",
            Self::Paid => "paid",
            Self::Uncollectible => "uncollectible",
            Self::Void => "void",
        }
    }
}

impl fmt::Display for InvoiceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of Stripe's invoice statuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown invoice status {0:?}")]
pub struct UnknownInvoiceStatus(pub String);

impl FromStr for InvoiceStatus {
    type Err = UnknownInvoiceStatus;
    fn from_str(s: &str) -> Result<Self, UnknownInvoiceStatus> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownInvoiceStatus(s.to_owned()))
    }
}

/// An invoice as the service knows it: the latest `invoice.updated` fact,
/// plus what it learned from the invoice's payment attempts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceState {
    /// The invoice.
    pub invoice_id: StripeInvoiceId,
    /// Its customer.
    pub customer_id: StripeCustomerId,
    /// Its subscription, if it bills one.
    pub subscription_id: Option<StripeSubscriptionId>,
    /// `status`.
    pub status: InvoiceStatus,
    /// `amount_due`, minor units of `currency`.
    pub amount_due: i64,
    /// `amount_remaining`, minor units of `currency`.
    pub amount_remaining: i64,
    /// `currency`.
    pub currency: Currency,
    /// `attempt_count`: payment attempts so far.
    pub attempt_count: u32,
    /// `next_payment_attempt`: the scheduled automatic retry, if any.
    pub next_payment_attempt: Option<DateTime<Utc>>,
    /// `due_date` (invoices sent for manual payment).
    pub due_date: Option<DateTime<Utc>>,
    /// `status_transitions.paid_at`: set means paid, whatever `status` says.
    pub paid_at: Option<DateTime<Utc>>,
    /// When the first attempt failed (earliest failed payment attempt the
    /// service saw), for the delinquency age.
    pub first_failed_at: Option<DateTime<Utc>>,
    /// Failure code of the last attempt, e.g. `card_declined`.
    pub last_failure_code: Option<String>,
    /// Failure message of the last attempt.
    pub last_failure_message: Option<String>,
    /// The payment waits for the customer to authenticate (3-D Secure):
    /// `invoice.payment_action_required`, or a payment intent in
    /// `requires_action`.
    pub requires_action: bool,
    /// `billing_reason`, e.g. `subscription_cycle`.
    pub billing_reason: Option<String>,
}

impl InvoiceState {
    fn is_settled(&self) -> bool {
        self.status == InvoiceStatus::Paid || self.paid_at.is_some() || self.amount_remaining <= 0
    }

    fn awaits_first_authentication(&self) -> bool {
        self.requires_action
            && self.attempt_count <= 1
            && self
                .last_failure_code
                .as_deref()
                .is_none_or(|code| code == "authentication_required")
    }

    fn remaining(&self) -> Money {
        Money::new(self.amount_remaining, self.currency)
    }

    /// Whole days since the earlier of the first failure and the due date,
    /// when that is not in the future.
    fn days_delinquent(&self, now: DateTime<Utc>) -> Option<i64> {
        let since = [self.first_failed_at, self.due_date]
            .into_iter()
            .flatten()
            .filter(|at| *at <= now)
            .min()?;
        Some((now - since).num_days())
    }
}

const INVOICE_KINDS: [SignalKind; 4] = [
    SignalKind::PaymentFailed,
    SignalKind::DunningInProgress,
    SignalKind::PaymentActionRequired,
    SignalKind::InvoiceUncollectible,
];

/// The signal changes an invoice's current state calls for. `now` is only
/// used for the delinquency age; the rules never read the clock.
pub fn invoice_signals(
    invoice: &InvoiceState,
    now: DateTime<Utc>,
    config: &RiskConfig,
) -> Vec<SignalChange> {
    let key = CauseKey::invoice(&invoice.invoice_id);
    let resolve_all = |reason| {
        INVOICE_KINDS
            .into_iter()
            .map(|kind| SignalChange::resolve(kind, &key, reason))
            .collect()
    };
    match invoice.status {
        InvoiceStatus::Draft => Vec::new(),
        InvoiceStatus::Void => resolve_all(ResolveReason::Voided),
        _ if invoice.is_settled() => resolve_all(ResolveReason::Paid),
        InvoiceStatus::Open => open_invoice(invoice, &key, now, config),
        InvoiceStatus::Uncollectible => uncollectible_invoice(invoice, &key, now, config),
        InvoiceStatus::Paid => resolve_all(ResolveReason::Paid),
    }
}

fn open_invoice(
    invoice: &InvoiceState,
    key: &CauseKey,
    now: DateTime<Utc>,
    config: &RiskConfig,
) -> Vec<SignalChange> {
    let mut changes = Vec::new();
    let remaining = invoice.remaining();
    let high_value = config.is_high_value(remaining);
    let days_delinquent = invoice.days_delinquent(now);
    let delinquent =
        days_delinquent.is_some_and(|d| d >= i64::from(config.delinquent_critical_days));
    let attempts = invoice.attempt_count;

    if attempts >= 1 && !invoice.awaits_first_authentication() {
        let ladder = attempt_ladder(attempts, config);
        let mut severity = if high_value { ladder.bumped() } else { ladder };
        if delinquent {
            severity = Severity::Critical;
        }
        let mut details = vec![format!("attempt {attempts}")];
        details.extend(invoice.last_failure_code.clone());
        if let Some(days) = days_delinquent.filter(|d| *d >= 1) {
            details.push(format!("{days} days late"));
        }
        changes.push(raise(
            invoice,
            SignalKind::PaymentFailed,
            key,
            severity,
            evidence(invoice, days_delinquent, None, high_value),
            format!("Payment of {remaining} failed ({})", details.join(", ")),
        ));

        let (stage, severity, summary) = match invoice.next_payment_attempt {
            Some(next) => (
                DunningStage::Retrying {
                    failed_attempts: attempts,
                },
                if delinquent {
                    Severity::Critical
                } else {
                    ladder
                },
                format!(
                    "Dunning {remaining}: {} failed, next retry {}",
                    plural(attempts, "attempt"),
                    next.format("%Y-%m-%d %H:%M UTC")
                ),
            ),
            None => (
                DunningStage::RetriesExhausted,
                Severity::Critical,
                format!(
                    "Dunning {remaining}: {} failed, no retry scheduled",
                    plural(attempts, "attempt")
                ),
            ),
        };
        changes.push(raise(
            invoice,
            SignalKind::DunningInProgress,
            key,
            severity,
            evidence(invoice, days_delinquent, Some(stage), high_value),
            summary,
        ));
    }

    if invoice.requires_action {
        let severity = if high_value {
            Severity::High
        } else {
            Severity::Medium
        };
        changes.push(raise(
            invoice,
            SignalKind::PaymentActionRequired,
            key,
            severity,
            evidence(invoice, days_delinquent, None, high_value),
            format!("Payment of {remaining} needs the customer to authenticate (3-D Secure)"),
        ));
    } else if attempts >= 1 {
        changes.push(SignalChange::resolve(
            SignalKind::PaymentActionRequired,
            key,
            ResolveReason::ActionCompleted,
        ));
    }
    changes
}

fn uncollectible_invoice(
    invoice: &InvoiceState,
    key: &CauseKey,
    now: DateTime<Utc>,
    config: &RiskConfig,
) -> Vec<SignalChange> {
    let remaining = invoice.remaining();
    let high_value = config.is_high_value(remaining);
    let severity = if high_value {
        Severity::Critical
    } else {
        Severity::High
    };
    let mut changes: Vec<_> = [
        SignalKind::PaymentFailed,
        SignalKind::DunningInProgress,
        SignalKind::PaymentActionRequired,
    ]
    .into_iter()
    .map(|kind| SignalChange::resolve(kind, key, ResolveReason::MarkedUncollectible))
    .collect();
    changes.push(raise(
        invoice,
        SignalKind::InvoiceUncollectible,
        key,
        severity,
        evidence(invoice, invoice.days_delinquent(now), None, high_value),
        format!(
            "Invoice {} marked uncollectible: {remaining} written off after {}",
            invoice.invoice_id,
            plural(invoice.attempt_count, "attempt")
        ),
    ));
    changes
}

fn attempt_ladder(attempts: u32, config: &RiskConfig) -> Severity {
    if attempts >= config.payment_failed_critical_attempts {
        Severity::Critical
    } else if attempts >= config.payment_failed_high_attempts {
        Severity::High
    } else {
        Severity::Medium
    }
}

fn plural(count: u32, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

fn evidence(
    invoice: &InvoiceState,
    days_delinquent: Option<i64>,
    dunning_stage: Option<DunningStage>,
    high_value: bool,
) -> Evidence {
    Evidence::Invoice(InvoiceEvidence {
        invoice_id: invoice.invoice_id.clone(),
        subscription_id: invoice.subscription_id.clone(),
        status: invoice.status,
        amount_due: Money::new(invoice.amount_due, invoice.currency),
        amount_remaining: invoice.remaining(),
        attempt_count: invoice.attempt_count,
        next_payment_attempt: invoice.next_payment_attempt,
        due_date: invoice.due_date,
        days_delinquent,
        failure_code: invoice.last_failure_code.clone(),
        failure_message: invoice.last_failure_message.clone(),
        billing_reason: invoice.billing_reason.clone(),
        dunning_stage,
        high_value,
    })
}

fn raise(
    invoice: &InvoiceState,
    kind: SignalKind,
    key: &CauseKey,
    severity: Severity,
    evidence: Evidence,
    summary: String,
) -> SignalChange {
    let mut objects = vec![invoice.invoice_id.to_string()];
    objects.extend(invoice.subscription_id.as_ref().map(ToString::to_string));
    SignalChange::Raise(SignalDraft {
        kind,
        cause_key: key.clone(),
        severity,
        customer_id: invoice.customer_id.clone(),
        objects,
        evidence,
        summary,
    })
}

#[cfg(test)]
mod tests;
