//! Signals from a subscription change: dunning by status, downgrade,
//! cancellation requested, subscription canceled.
//!
//! | change | signal | key | severity |
//! |---|---|---|---|
//! | status `past_due` | raise dunning (`past_due`) | `subscription:<id>` | High |
//! | status `unpaid` | raise dunning (`unpaid`) | `subscription:<id>` | Critical |
//! | status `active` / `trialing` | resolve dunning (`recovered`) | `subscription:<id>` | |
//! | status `paused` | resolve dunning (`paused`) | `subscription:<id>` | |
//! | `cancel_at_period_end` set, not ended | raise cancellation requested | `subscription:<id>` | High |
//! | `cancel_at_period_end` unset, not ended | resolve cancellation requested (`withdrawn`) | `subscription:<id>` | |
//! | status `canceled` / `incomplete_expired` | raise canceled; resolve cancellation requested and dunning (`subscription_canceled`) | `subscription:<id>` | by what was lost, below |
//! | live before and after, MRR or quantity down | raise downgrade | `subscription:<id>:<occurred_at>` | by the drop, below |
//!
//! "Live" is `active`, `past_due` or `trialing`. A downgrade's severity is
//! by the relative MRR drop ([`RiskConfig::downgrade_medium_percent`] 10 %,
//! `…high…` 30 %, `…critical…` 50 %, inclusive; below: Low). With no MRR
//! before (a trial) it is by the relative quantity drop; a quantity drop that
//! leaves a positive MRR unchanged (flat-fee plans) is Low.
//!
//! A change that sets `cancel_at_period_end` and shows MRR 0 after is not a
//! downgrade: under Stripe's default MRR policy a requested cancellation
//! stops counting at once, and the cancellation signal already says so.
//!
//! A canceled subscription is Critical when it brought revenue (a positive
//! MRR before, or it was `active`, `past_due` or `unpaid`: under the default
//! MRR policy its MRR may already read 0), High when it was `paused`, Medium
//! when a trial ended, Low when the first payment never succeeded
//! (`incomplete`). A cancellation first seen already done (no status
//! before) is High, and raised only if it happened within
//! [`RiskConfig::one_off_open_days`] of the fact: older ones are history
//! coming in through a backfill, not news. A later change of an ended
//! subscription raises nothing again.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{StripeCustomerId, StripeSubscriptionId};
use crate::money::{Currency, Money};
use crate::movement::MovementKind;
use crate::mrr::SubscriptionStatus;

use super::change::{
    DunningStage, Evidence, ResolveReason, SignalChange, SignalDraft, SubscriptionEvidence,
};
use super::{CauseKey, RiskConfig, Severity, SignalKind};

/// A string that is not a [`MovementKind`] name.
pub use crate::movement::UnknownMovement;

/// Parses the `movement` string of a `subscription.changed` fact
/// (`MovementKind::as_str` spellings).
pub fn parse_movement(name: &str) -> Result<MovementKind, UnknownMovement> {
    name.parse()
}

/// One change of a subscription: the `subscription.changed` fact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionChange {
    /// The subscription.
    pub subscription_id: StripeSubscriptionId,
    /// Its customer.
    pub customer_id: StripeCustomerId,
    /// Status before the change; none when first seen.
    pub status_before: Option<SubscriptionStatus>,
    /// Status after the change.
    pub status_after: SubscriptionStatus,
    /// Plan (price) before.
    pub plan_before: Option<String>,
    /// Plan (price) after.
    pub plan_after: Option<String>,
    /// Total quantity before; none when unknown.
    pub quantity_before: Option<u64>,
    /// Total quantity after; none when unknown.
    pub quantity_after: Option<u64>,
    /// MRR before, minor units of `currency` (0 when first seen).
    pub mrr_before: i64,
    /// MRR after, minor units of `currency`.
    pub mrr_after: i64,
    /// Currency of both MRRs.
    pub currency: Currency,
    /// The sync worker's classification (see [`parse_movement`]).
    pub movement: MovementKind,
    /// `cancel_at_period_end` after the change.
    pub cancel_at_period_end: bool,
    /// End of the current period.
    pub current_period_end: Option<DateTime<Utc>>,
    /// `canceled_at`.
    pub canceled_at: Option<DateTime<Utc>>,
    /// When the change happened at Stripe (the fact's `occurred_at`).
    pub occurred_at: DateTime<Utc>,
}

impl SubscriptionChange {
    fn money(&self, minor: i64) -> Money {
        Money::new(minor.max(0), self.currency)
    }

    fn mrr_at_stake(&self) -> Money {
        self.money(self.mrr_before.max(self.mrr_after))
    }

    /// Basis points of the MRR drop, when MRR went down from a positive amount.
    fn mrr_drop_bps(&self) -> Option<u32> {
        let (before, after) = (self.mrr_before.max(0), self.mrr_after.max(0));
        (after < before).then(|| drop_bps(before.unsigned_abs(), after.unsigned_abs()))
    }

    fn quantity_drop_bps(&self) -> Option<u32> {
        match (self.quantity_before, self.quantity_after) {
            (Some(before), Some(after)) if after < before => Some(drop_bps(before, after)),
            _ => None,
        }
    }

    fn evidence(&self, dunning_stage: Option<DunningStage>) -> Evidence {
        let before = self.money(self.mrr_before);
        let after = self.money(self.mrr_after);
        Evidence::Subscription(SubscriptionEvidence {
            subscription_id: self.subscription_id.clone(),
            status_before: self.status_before,
            status_after: self.status_after,
            plan_before: self.plan_before.clone(),
            plan_after: self.plan_after.clone(),
            quantity_before: self.quantity_before,
            quantity_after: self.quantity_after,
            mrr_before: before,
            mrr_after: after,
            // Both clamped to ≥ 0, so the difference cannot overflow.
            mrr_delta: Money::new(after.minor - before.minor, self.currency),
            mrr_drop_bps: self.mrr_drop_bps(),
            mrr_at_stake: self.mrr_at_stake(),
            movement: self.movement,
            cancel_at_period_end: self.cancel_at_period_end,
            current_period_end: self.current_period_end,
            canceled_at: self.canceled_at,
            occurred_at: self.occurred_at,
            dunning_stage,
        })
    }

    fn raise(
        &self,
        kind: SignalKind,
        cause_key: CauseKey,
        severity: Severity,
        dunning_stage: Option<DunningStage>,
        summary: String,
    ) -> SignalChange {
        SignalChange::Raise(SignalDraft {
            kind,
            cause_key,
            severity,
            customer_id: self.customer_id.clone(),
            objects: vec![self.subscription_id.to_string()],
            evidence: self.evidence(dunning_stage),
            summary,
        })
    }
}

/// `(before − after) / before` in basis points, rounded down; `before > after`.
fn drop_bps(before: u64, after: u64) -> u32 {
    let ratio = u128::from(before - after) * 10_000 / u128::from(before);
    u32::try_from(ratio).unwrap_or(10_000)
}

fn is_live(status: SubscriptionStatus) -> bool {
    matches!(
        status,
        SubscriptionStatus::Active | SubscriptionStatus::PastDue | SubscriptionStatus::Trialing
    )
}

fn has_ended(status: SubscriptionStatus) -> bool {
    matches!(
        status,
        SubscriptionStatus::Canceled | SubscriptionStatus::IncompleteExpired
    )
}

/// The signal changes a subscription change calls for.
pub fn subscription_signals(change: &SubscriptionChange, config: &RiskConfig) -> Vec<SignalChange> {
    let key = CauseKey::subscription(&change.subscription_id);
    let id = &change.subscription_id;
    let mut changes = Vec::new();

    match change.status_after {
        SubscriptionStatus::PastDue => changes.push(change.raise(
            SignalKind::DunningInProgress,
            key.clone(),
            Severity::High,
            Some(DunningStage::PastDue),
            format!(
                "Subscription {id} is past due (MRR {})",
                change.mrr_at_stake()
            ),
        )),
        SubscriptionStatus::Unpaid => changes.push(change.raise(
            SignalKind::DunningInProgress,
            key.clone(),
            Severity::Critical,
            Some(DunningStage::Unpaid),
            format!(
                "Subscription {id} is unpaid: retries exhausted (MRR {})",
                change.mrr_at_stake()
            ),
        )),
        SubscriptionStatus::Active | SubscriptionStatus::Trialing => {
            changes.push(SignalChange::resolve(
                SignalKind::DunningInProgress,
                &key,
                ResolveReason::Recovered,
            ))
        }
        SubscriptionStatus::Paused => changes.push(SignalChange::resolve(
            SignalKind::DunningInProgress,
            &key,
            ResolveReason::Paused,
        )),
        SubscriptionStatus::Canceled | SubscriptionStatus::IncompleteExpired => {
            changes.push(SignalChange::resolve(
                SignalKind::DunningInProgress,
                &key,
                ResolveReason::SubscriptionCanceled,
            ));
        }
        SubscriptionStatus::Incomplete => {}
    }

    if has_ended(change.status_after) {
        changes.push(SignalChange::resolve(
            SignalKind::CancellationRequested,
            &key,
            ResolveReason::SubscriptionCanceled,
        ));
        if let Some(severity) = canceled_severity(change, config) {
            let was = change
                .status_before
                .map(|s| format!("was {s}, "))
                .unwrap_or_default();
            changes.push(change.raise(
                SignalKind::SubscriptionCanceled,
                key.clone(),
                severity,
                None,
                format!(
                    "Subscription {id} canceled ({was}MRR {})",
                    change.mrr_at_stake()
                ),
            ));
        }
    } else if change.cancel_at_period_end {
        let ends = change
            .current_period_end
            .map(|end| format!("ends {}", end.format("%Y-%m-%d")))
            .unwrap_or_else(|| "ends at period end".to_owned());
        changes.push(change.raise(
            SignalKind::CancellationRequested,
            key.clone(),
            Severity::High,
            None,
            format!(
                "Cancellation requested for {id}: {ends} (MRR at stake {})",
                change.mrr_at_stake()
            ),
        ));
    } else {
        changes.push(SignalChange::resolve(
            SignalKind::CancellationRequested,
            &key,
            ResolveReason::Withdrawn,
        ));
    }

    if let Some(draft) = downgrade(change, config) {
        changes.push(draft);
    }
    changes
}

fn canceled_severity(change: &SubscriptionChange, config: &RiskConfig) -> Option<Severity> {
    let Some(before) = change.status_before else {
        // First seen already ended: news only if recent, and what it
        // brought is unknown.
        let recent = change.canceled_at.is_some_and(|canceled| {
            change.occurred_at - canceled
                < chrono::TimeDelta::days(i64::from(config.one_off_open_days))
        });
        return recent.then_some(Severity::High);
    };
    match before {
        // A later update of an ended subscription: the churn was raised when
        // it happened; raising again would lower its severity (MRR is 0 by
        // now) or re-open an aged-out signal.
        SubscriptionStatus::Canceled | SubscriptionStatus::IncompleteExpired => None,
        _ if change.mrr_before > 0 => Some(Severity::Critical),
        SubscriptionStatus::Active | SubscriptionStatus::PastDue | SubscriptionStatus::Unpaid => {
            Some(Severity::Critical)
        }
        SubscriptionStatus::Paused => Some(Severity::High),
        SubscriptionStatus::Trialing => Some(Severity::Medium),
        SubscriptionStatus::Incomplete => Some(Severity::Low),
    }
}

fn downgrade(change: &SubscriptionChange, config: &RiskConfig) -> Option<SignalChange> {
    let before = change.status_before?;
    if !(is_live(before) && is_live(change.status_after)) {
        return None;
    }
    let cancellation_artifact =
        change.cancel_at_period_end && change.mrr_after <= 0 && change.mrr_before > 0;
    if cancellation_artifact {
        return None;
    }
    let mrr_drop = change.mrr_drop_bps();
    let quantity_drop = change.quantity_drop_bps();
    let severity = match (mrr_drop, quantity_drop) {
        (None, None) => return None,
        (Some(bps), _) => config.downgrade_severity(bps),
        (None, Some(bps)) if change.mrr_before <= 0 => config.downgrade_severity(bps),
        (None, Some(_)) => Severity::Low,
    };

    let mut parts = Vec::new();
    if let Some(bps) = mrr_drop {
        parts.push(format!(
            "MRR {} → {} (−{}.{}%)",
            change.money(change.mrr_before),
            change.money(change.mrr_after),
            bps / 100,
            (bps % 100) / 10
        ));
    }
    if let (Some(q_before), Some(q_after)) = (change.quantity_before, change.quantity_after) {
        if q_before != q_after {
            parts.push(format!("quantity {q_before} → {q_after}"));
        }
    }
    if change.plan_before != change.plan_after {
        if let (Some(p_before), Some(p_after)) = (&change.plan_before, &change.plan_after) {
            parts.push(format!("plan {p_before} → {p_after}"));
        }
    }
    Some(change.raise(
        SignalKind::SubscriptionDowngrade,
        CauseKey::downgrade(&change.subscription_id, change.occurred_at),
        severity,
        None,
        format!(
            "Subscription {} downgraded: {}",
            change.subscription_id,
            parts.join(", ")
        ),
    ))
}

#[cfg(test)]
mod tests;
