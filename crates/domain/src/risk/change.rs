//! What a rule decides: raise or resolve a signal, with its evidence.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ids::{StripeCustomerId, StripeInvoiceId, StripePaymentMethodId, StripeSubscriptionId};
use crate::money::Money;
use crate::movement::MovementKind;
use crate::mrr::SubscriptionStatus;

use super::{CauseKey, DisputeId, DisputeStatus, InvoiceStatus, Severity, SignalKind};

/// One decision of a rule about one signal, identified by `(kind, cause_key)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
// Changes live briefly in small vectors; boxing the draft would only make
// every rule and every match on a change noisier.
#[allow(clippy::large_enum_variant)]
pub enum SignalChange {
    /// The cause is present: open the signal, or update the open one's
    /// severity, evidence, objects and summary.
    Raise(SignalDraft),
    /// The cause is gone: close the open signal, if any (otherwise nothing).
    Resolve {
        /// Kind of the signal.
        kind: SignalKind,
        /// Cause of the signal.
        cause_key: CauseKey,
        /// Why it is resolved.
        reason: ResolveReason,
    },
}

impl SignalChange {
    /// The kind of the signal concerned.
    pub fn kind(&self) -> SignalKind {
        match self {
            Self::Raise(draft) => draft.kind,
            Self::Resolve { kind, .. } => *kind,
        }
    }

    /// The cause key of the signal concerned.
    pub fn cause_key(&self) -> &CauseKey {
        match self {
            Self::Raise(draft) => &draft.cause_key,
            Self::Resolve { cause_key, .. } => cause_key,
        }
    }

    /// The draft when this is a raise.
    pub fn as_raise(&self) -> Option<&SignalDraft> {
        match self {
            Self::Raise(draft) => Some(draft),
            Self::Resolve { .. } => None,
        }
    }

    /// The reason when this is a resolve.
    pub fn resolve_reason(&self) -> Option<ResolveReason> {
        match self {
            Self::Raise(_) => None,
            Self::Resolve { reason, .. } => Some(*reason),
        }
    }

    pub(crate) fn resolve(kind: SignalKind, cause_key: &CauseKey, reason: ResolveReason) -> Self {
        Self::Resolve {
            kind,
            cause_key: cause_key.clone(),
            reason,
        }
    }
}

/// A signal to open or update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalDraft {
    /// What the signal is about.
    pub kind: SignalKind,
    /// Which cause it is (see [`CauseKey`]).
    pub cause_key: CauseKey,
    /// How urgent it is now.
    pub severity: Severity,
    /// The Stripe customer; the service maps it to the CSCX account.
    pub customer_id: StripeCustomerId,
    /// Stripe ids of the objects involved (invoice, subscription, payment
    /// method, dispute, charge), most specific first.
    pub objects: Vec<String>,
    /// The facts behind the signal.
    pub evidence: Evidence,
    /// One line for humans, e.g. `"Payment of 490.00 USD failed (attempt 2, card_declined)"`.
    pub summary: String,
}

/// The facts behind a signal, by the object that caused it. Serialised with
/// a `"type"` tag (`invoice`, `subscription`, `card`, `dispute`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Evidence {
    /// Payment failed, dunning of an invoice, action required, uncollectible.
    Invoice(InvoiceEvidence),
    /// Dunning of a subscription, downgrade, cancellation requested, canceled.
    Subscription(SubscriptionEvidence),
    /// Card expiring or expired.
    Card(CardEvidence),
    /// Dispute opened.
    Dispute(DisputeEvidence),
}

/// What an invoice said when a rule looked at it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceEvidence {
    /// The invoice.
    pub invoice_id: StripeInvoiceId,
    /// Its subscription, if any.
    pub subscription_id: Option<StripeSubscriptionId>,
    /// Its status.
    pub status: InvoiceStatus,
    /// `amount_due`.
    pub amount_due: Money,
    /// `amount_remaining`: what is still owed.
    pub amount_remaining: Money,
    /// Payment attempts so far.
    pub attempt_count: u32,
    /// The next automatic retry, if scheduled.
    pub next_payment_attempt: Option<DateTime<Utc>>,
    /// `due_date` (invoices sent for manual payment).
    pub due_date: Option<DateTime<Utc>>,
    /// Whole days since the payment became late (first failure or due
    /// date, whichever is earlier), when it is late.
    pub days_delinquent: Option<i64>,
    /// Failure code of the last attempt, e.g. `card_declined`.
    pub failure_code: Option<String>,
    /// Failure message of the last attempt.
    pub failure_message: Option<String>,
    /// `billing_reason`, e.g. `subscription_cycle`.
    pub billing_reason: Option<String>,
    /// Where dunning stands, for the dunning signal.
    pub dunning_stage: Option<DunningStage>,
    /// Whether `amount_remaining` reaches the currency's high-value threshold.
    pub high_value: bool,
}

/// What a subscription change said when a rule looked at it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionEvidence {
    /// The subscription.
    pub subscription_id: StripeSubscriptionId,
    /// Status before the change (none: first seen).
    pub status_before: Option<SubscriptionStatus>,
    /// Status after the change.
    pub status_after: SubscriptionStatus,
    /// Plan before.
    pub plan_before: Option<String>,
    /// Plan after.
    pub plan_after: Option<String>,
    /// Quantity before.
    pub quantity_before: Option<u64>,
    /// Quantity after.
    pub quantity_after: Option<u64>,
    /// MRR before.
    pub mrr_before: Money,
    /// MRR after.
    pub mrr_after: Money,
    /// `mrr_after − mrr_before`.
    pub mrr_delta: Money,
    /// Relative MRR drop in basis points (3000 = 30 %), when MRR went down
    /// from a positive amount.
    pub mrr_drop_bps: Option<u32>,
    /// The MRR this subscription brings when it is not leaving: the larger
    /// of before and after (under Stripe's default MRR policy a requested
    /// cancellation already shows MRR 0 after).
    pub mrr_at_stake: Money,
    /// The sync worker's classification of the change.
    pub movement: MovementKind,
    /// `cancel_at_period_end`.
    pub cancel_at_period_end: bool,
    /// End of the current period: when a requested cancellation takes effect.
    pub current_period_end: Option<DateTime<Utc>>,
    /// When it was canceled.
    pub canceled_at: Option<DateTime<Utc>>,
    /// When the change happened at Stripe.
    pub occurred_at: DateTime<Utc>,
    /// Where dunning stands, for the dunning signal.
    pub dunning_stage: Option<DunningStage>,
}

/// What a card said when a rule looked at it. Never more than brand, last
/// four digits and expiry (PCI: no card data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardEvidence {
    /// The payment method.
    pub payment_method_id: StripePaymentMethodId,
    /// Card brand, e.g. `visa`.
    pub brand: String,
    /// Last four digits.
    pub last4: String,
    /// Expiry month, 1–12.
    pub exp_month: u32,
    /// Expiry year.
    pub exp_year: i32,
    /// The last day the card is valid: the end of its expiry month.
    pub valid_through: NaiveDate,
    /// Days from `today` to `valid_through` (0 on the last day, negative
    /// once expired).
    pub days_until_expiry: i64,
}

/// What a dispute said when a rule looked at it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisputeEvidence {
    /// The dispute.
    pub dispute_id: DisputeId,
    /// The disputed charge.
    pub charge_id: String,
    /// Disputed amount.
    pub amount: Money,
    /// Stripe's `reason`, e.g. `fraudulent`.
    pub reason: String,
    /// Status.
    pub status: DisputeStatus,
    /// Deadline for submitting evidence, when one is running.
    pub evidence_due_by: Option<DateTime<Utc>>,
}

/// Where dunning stands. Serialised as its name: `retry_1`, `retry_2`, …,
/// `retries_exhausted`, `past_due`, `unpaid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DunningStage {
    /// `failed_attempts` attempts failed and Stripe scheduled another
    /// (`retry_<failed_attempts>`).
    Retrying {
        /// Attempts made so far (≥ 1).
        failed_attempts: u32,
    },
    /// Attempts failed and no retry is scheduled: Stripe gave up, or
    /// automatic collection is off (`retries_exhausted`).
    ///
    /// There is no "final attempt" stage: how many retries a tenant's Stripe
    /// makes is a dashboard setting we cannot read.
    RetriesExhausted,
    /// The subscription is `past_due` (`past_due`).
    PastDue,
    /// The subscription is `unpaid`: retries exhausted, invoices left open
    /// (`unpaid`).
    Unpaid,
}

impl DunningStage {
    /// The stage's name, e.g. `"retry_2"`.
    pub fn name(&self) -> String {
        match self {
            Self::Retrying { failed_attempts } => format!("retry_{failed_attempts}"),
            Self::RetriesExhausted => "retries_exhausted".to_owned(),
            Self::PastDue => "past_due".to_owned(),
            Self::Unpaid => "unpaid".to_owned(),
        }
    }
}

impl fmt::Display for DunningStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// A string that is not a [`DunningStage`] name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown dunning stage {0:?}")]
pub struct UnknownDunningStage(pub String);

impl FromStr for DunningStage {
    type Err = UnknownDunningStage;
    fn from_str(s: &str) -> Result<Self, UnknownDunningStage> {
        let unknown = || UnknownDunningStage(s.to_owned());
        match s {
            "retries_exhausted" => Ok(Self::RetriesExhausted),
            "past_due" => Ok(Self::PastDue),
            "unpaid" => Ok(Self::Unpaid),
            _ => {
                let digits = s.strip_prefix("retry_").ok_or_else(unknown)?;
                if digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(unknown());
                }
                let failed_attempts = digits.parse().map_err(|_| unknown())?;
                Ok(Self::Retrying { failed_attempts })
            }
        }
    }
}

impl Serialize for DunningStage {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.name())
    }
}

impl<'de> Deserialize<'de> for DunningStage {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = std::borrow::Cow::<str>::deserialize(deserializer)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

/// Why a signal was resolved. The snake_case names are stable (stored and
/// published).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResolveReason {
    /// The invoice was paid, or nothing remains to pay (`paid`).
    Paid,
    /// The invoice was voided (`voided`).
    Voided,
    /// The invoice was marked uncollectible: retries stopped, the
    /// uncollectible signal takes over (`marked_uncollectible`).
    MarkedUncollectible,
    /// The invoice no longer waits for authentication (`action_completed`).
    ActionCompleted,
    /// `cancel_at_period_end` was unset (`withdrawn`).
    Withdrawn,
    /// The subscription ended (`subscription_canceled`).
    SubscriptionCanceled,
    /// The subscription is `active` or `trialing` again (`recovered`).
    Recovered,
    /// The subscription is `paused`: nothing is collected (`paused`).
    Paused,
    /// The card is past its expiry: the expired signal takes over (`card_expired`).
    CardExpired,
    /// The card is not within the expiring window (`card_not_expiring`).
    CardNotExpiring,
    /// The card is no longer the customer's default (`card_not_default`).
    CardNotDefault,
    /// The card was detached from the customer (`card_detached`).
    CardDetached,
    /// The default card changed, or the same card got a new expiry (`card_replaced`).
    CardReplaced,
    /// The customer has no default card any more (`card_removed`).
    CardRemoved,
    /// The dispute was won (`dispute_won`).
    DisputeWon,
    /// The dispute was lost (`dispute_lost`).
    DisputeLost,
    /// The inquiry closed without becoming a chargeback (`dispute_closed`).
    DisputeClosed,
    /// The dispute was prevented before it became a chargeback (`dispute_prevented`).
    DisputePrevented,
    /// The charge was refunded (legacy `charge_refunded`) (`charge_refunded`).
    ChargeRefunded,
    /// A one-off signal reached the end of its open window (`aged_out`).
    AgedOut,
}

impl ResolveReason {
    /// Every reason, in declaration order.
    pub const ALL: [ResolveReason; 20] = [
        Self::Paid,
        Self::Voided,
        Self::MarkedUncollectible,
        Self::ActionCompleted,
        Self::Withdrawn,
        Self::SubscriptionCanceled,
        Self::Recovered,
        Self::Paused,
        Self::CardExpired,
        Self::CardNotExpiring,
        Self::CardNotDefault,
        Self::CardDetached,
        Self::CardReplaced,
        Self::CardRemoved,
        Self::DisputeWon,
        Self::DisputeLost,
        Self::DisputeClosed,
        Self::DisputePrevented,
        Self::ChargeRefunded,
        Self::AgedOut,
    ];

    /// The stable snake_case name, e.g. `"paid"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Paid => "paid",
            Self::Voided => "voided",
            Self::MarkedUncollectible => "marked_uncollectible",
            Self::ActionCompleted => "action_completed",
            Self::Withdrawn => "withdrawn",
            Self::SubscriptionCanceled => "subscription_canceled",
            Self::Recovered => "recovered",
            Self::Paused => "paused",
            Self::CardExpired => "card_expired",
            Self::CardNotExpiring => "card_not_expiring",
            Self::CardNotDefault => "card_not_default",
            Self::CardDetached => "card_detached",
            Self::CardReplaced => "card_replaced",
            Self::CardRemoved => "card_removed",
            Self::DisputeWon => "dispute_won",
            Self::DisputeLost => "dispute_lost",
            Self::DisputeClosed => "dispute_closed",
            Self::DisputePrevented => "dispute_prevented",
            Self::ChargeRefunded => "charge_refunded",
            Self::AgedOut => "aged_out",
        }
    }
}

impl fmt::Display for ResolveReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not a [`ResolveReason`] name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown resolve reason {0:?}")]
pub struct UnknownResolveReason(pub String);

impl FromStr for ResolveReason {
    type Err = UnknownResolveReason;
    fn from_str(s: &str) -> Result<Self, UnknownResolveReason> {
        Self::ALL
            .into_iter()
            .find(|reason| reason.as_str() == s)
            .ok_or_else(|| UnknownResolveReason(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dunning_stage_names_round_trip() {
        let stages = [
            (DunningStage::Retrying { failed_attempts: 1 }, "retry_1"),
            (
                DunningStage::Retrying {
                    failed_attempts: 12,
                },
                "retry_12",
            ),
            (DunningStage::RetriesExhausted, "retries_exhausted"),
            (DunningStage::PastDue, "past_due"),
            (DunningStage::Unpaid, "unpaid"),
        ];
        for (stage, name) in stages {
            assert_eq!(stage.name(), name);
            assert_eq!(stage.to_string(), name);
            assert_eq!(name.parse::<DunningStage>().unwrap(), stage);
            let json = serde_json::to_string(&stage).unwrap();
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<DunningStage>(&json).unwrap(), stage);
        }
    }

    #[test]
    fn malformed_dunning_stages_are_rejected() {
        for bad in [
            "",
            "retry_",
            "retry_0",
            "retry_01",
            "retry_-1",
            "retry_x",
            "retry_1x",
            "retry 1",
            "final_attempt",
            "Unpaid",
        ] {
            assert_eq!(
                bad.parse::<DunningStage>(),
                Err(UnknownDunningStage(bad.to_owned())),
                "{bad:?}"
            );
        }
        assert!("retry_99999999999".parse::<DunningStage>().is_err());
    }

    #[test]
    fn resolve_reasons_round_trip_and_are_unique() {
        let mut names: Vec<_> = ResolveReason::ALL.iter().map(|r| r.as_str()).collect();
        for reason in ResolveReason::ALL {
            assert_eq!(reason.as_str().parse::<ResolveReason>().unwrap(), reason);
            assert_eq!(
                serde_json::to_string(&reason).unwrap(),
                format!("\"{reason}\"")
            );
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ResolveReason::ALL.len());
        assert!("solved".parse::<ResolveReason>().is_err());
    }

    #[test]
    fn change_accessors() {
        let key = CauseKey::from_stored("invoice:in_1");
        let resolve = SignalChange::resolve(SignalKind::PaymentFailed, &key, ResolveReason::Paid);
        assert_eq!(resolve.kind(), SignalKind::PaymentFailed);
        assert_eq!(resolve.cause_key(), &key);
        assert_eq!(resolve.resolve_reason(), Some(ResolveReason::Paid));
        assert!(resolve.as_raise().is_none());
        let json = serde_json::to_value(&resolve).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "change": "resolve",
                "kind": "payment_failed",
                "cause_key": "invoice:in_1",
                "reason": "paid"
            })
        );
    }
}
