//! What a signal is about ([`SignalKind`]) and how bad it is ([`Severity`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The kind of a risk signal. The snake_case names of [`SignalKind::as_str`]
/// are stable: they are stored, published and used in alert rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(description = "The kind of a risk signal (stable names).")
)]
#[serde(rename_all = "snake_case")]
pub enum SignalKind {
    /// A payment attempt on an open invoice failed (`payment_failed`).
    PaymentFailed,
    /// Stripe is retrying an invoice, gave up retrying, or the subscription
    /// is `past_due` / `unpaid` (`dunning_in_progress`).
    DunningInProgress,
    /// A payment waits for the customer to authenticate, e.g. 3-D Secure
    /// (`payment_action_required`).
    PaymentActionRequired,
    /// The default card expires soon (`card_expiring`).
    CardExpiring,
    /// The default card has expired (`card_expired`).
    CardExpired,
    /// MRR or quantity went down on a live subscription
    /// (`subscription_downgrade`).
    SubscriptionDowngrade,
    /// `cancel_at_period_end` is set (`cancellation_requested`).
    CancellationRequested,
    /// The subscription ended: churn (`subscription_canceled`).
    SubscriptionCanceled,
    /// A charge is disputed, or an inquiry is open (`dispute_opened`).
    DisputeOpened,
    /// An invoice was marked uncollectible: written off (`invoice_uncollectible`).
    InvoiceUncollectible,
}

impl SignalKind {
    /// Every kind, in declaration order.
    pub const ALL: [SignalKind; 10] = [
        Self::PaymentFailed,
        Self::DunningInProgress,
        Self::PaymentActionRequired,
        Self::CardExpiring,
        Self::CardExpired,
        Self::SubscriptionDowngrade,
        Self::CancellationRequested,
        Self::SubscriptionCanceled,
        Self::DisputeOpened,
        Self::InvoiceUncollectible,
    ];

    /// The stable snake_case name, e.g. `"payment_failed"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PaymentFailed => "payment_failed",
            Self::DunningInProgress => "dunning_in_progress",
            Self::PaymentActionRequired => "payment_action_required",
            Self::CardExpiring => "card_expiring",
            Self::CardExpired => "card_expired",
            Self::SubscriptionDowngrade => "subscription_downgrade",
            Self::CancellationRequested => "cancellation_requested",
            Self::SubscriptionCanceled => "subscription_canceled",
            Self::DisputeOpened => "dispute_opened",
            Self::InvoiceUncollectible => "invoice_uncollectible",
        }
    }

    /// Whether the kind is about money not coming in, so that an account
    /// with such an open signal has its MRR counted as revenue at risk:
    /// payment failed, dunning, payment action required, invoice
    /// uncollectible, dispute opened and card expired.
    ///
    /// An expiring card is not (the money still comes in today), nor are
    /// downgrades and cancellations (revenue that is leaving, not at risk of
    /// not being collected).
    pub fn is_payment(self) -> bool {
        matches!(
            self,
            Self::PaymentFailed
                | Self::DunningInProgress
                | Self::PaymentActionRequired
                | Self::InvoiceUncollectible
                | Self::DisputeOpened
                | Self::CardExpired
        )
    }

    /// Whether the kind records a one-off event rather than a state that a
    /// later fact clears: a downgrade or a cancellation happened and nothing
    /// "un-happens" it. Such signals are resolved by age
    /// ([`age_out_signals`](super::age_out_signals)), not by a rule.
    pub fn is_one_off(self) -> bool {
        matches!(
            self,
            Self::SubscriptionDowngrade | Self::SubscriptionCanceled
        )
    }

    /// Whether the kind is about the default card.
    pub fn is_card(self) -> bool {
        matches!(self, Self::CardExpiring | Self::CardExpired)
    }
}

impl fmt::Display for SignalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not a [`SignalKind`] name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown signal kind {0:?}")]
pub struct UnknownSignalKind(pub String);

impl FromStr for SignalKind {
    type Err = UnknownSignalKind;
    fn from_str(s: &str) -> Result<Self, UnknownSignalKind> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| UnknownSignalKind(s.to_owned()))
    }
}

/// How urgent a signal is, `Low < Medium < High < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing; no action expected.
    Low,
    /// Worth a look this week.
    Medium,
    /// Act soon: revenue is at risk.
    High,
    /// Act now: revenue is being lost.
    Critical,
}

impl Severity {
    /// Every severity, lowest first.
    pub const ALL: [Severity; 4] = [Self::Low, Self::Medium, Self::High, Self::Critical];

    /// The stable lowercase name, e.g. `"high"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    /// One step up, saturating at `Critical`.
    pub fn bumped(self) -> Severity {
        match self {
            Self::Low => Self::Medium,
            Self::Medium => Self::High,
            Self::High | Self::Critical => Self::Critical,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not a [`Severity`] name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown severity {0:?}; expected low, medium, high or critical")]
pub struct UnknownSeverity(pub String);

impl FromStr for Severity {
    type Err = UnknownSeverity;
    fn from_str(s: &str) -> Result<Self, UnknownSeverity> {
        Self::ALL
            .into_iter()
            .find(|severity| severity.as_str() == s)
            .ok_or_else(|| UnknownSeverity(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_round_trip_through_from_str_and_serde() {
        for kind in SignalKind::ALL {
            assert_eq!(kind.as_str().parse::<SignalKind>().unwrap(), kind);
            assert_eq!(kind.to_string(), kind.as_str());
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(serde_json::from_str::<SignalKind>(&json).unwrap(), kind);
        }
    }

    #[test]
    fn kind_names_are_the_stored_spellings() {
        let names: Vec<_> = SignalKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "payment_failed",
                "dunning_in_progress",
                "payment_action_required",
                "card_expiring",
                "card_expired",
                "subscription_downgrade",
                "cancellation_requested",
                "subscription_canceled",
                "dispute_opened",
                "invoice_uncollectible",
            ]
        );
    }

    #[test]
    fn unknown_kind_is_an_error_naming_the_input() {
        for bad in [
            "",
            "PaymentFailed",
            "payment-failed",
            "Payment_Failed",
            "dispute",
        ] {
            assert_eq!(
                bad.parse::<SignalKind>(),
                Err(UnknownSignalKind(bad.to_owned()))
            );
        }
        assert!(serde_json::from_str::<SignalKind>("\"churn\"").is_err());
    }

    #[test]
    fn payment_kinds_are_the_revenue_at_risk_set() {
        let payment: Vec<_> = SignalKind::ALL
            .into_iter()
            .filter(|k| k.is_payment())
            .collect();
        assert_eq!(
            payment,
            [
                SignalKind::PaymentFailed,
                SignalKind::DunningInProgress,
                SignalKind::PaymentActionRequired,
                SignalKind::CardExpired,
                SignalKind::DisputeOpened,
                SignalKind::InvoiceUncollectible,
            ]
        );
    }

    #[test]
    fn one_off_and_card_kinds() {
        let one_off: Vec<_> = SignalKind::ALL
            .into_iter()
            .filter(|k| k.is_one_off())
            .collect();
        assert_eq!(
            one_off,
            [
                SignalKind::SubscriptionDowngrade,
                SignalKind::SubscriptionCanceled
            ]
        );
        let card: Vec<_> = SignalKind::ALL
            .into_iter()
            .filter(|k| k.is_card())
            .collect();
        assert_eq!(card, [SignalKind::CardExpiring, SignalKind::CardExpired]);
    }

    #[test]
    fn severities_are_ordered_and_named() {
        assert!(Severity::Low < Severity::Medium);
        assert!(Severity::Medium < Severity::High);
        assert!(Severity::High < Severity::Critical);
        let mut shuffled = [
            Severity::High,
            Severity::Low,
            Severity::Critical,
            Severity::Medium,
        ];
        shuffled.sort();
        assert_eq!(shuffled, Severity::ALL);
        for severity in Severity::ALL {
            assert_eq!(severity.as_str().parse::<Severity>().unwrap(), severity);
            assert_eq!(
                serde_json::to_string(&severity).unwrap(),
                format!("\"{severity}\"")
            );
        }
        assert_eq!(
            "urgent".parse::<Severity>(),
            Err(UnknownSeverity("urgent".to_owned()))
        );
        assert!("High".parse::<Severity>().is_err());
    }

    #[test]
    fn bump_saturates_at_critical() {
        assert_eq!(Severity::Low.bumped(), Severity::Medium);
        assert_eq!(Severity::Medium.bumped(), Severity::High);
        assert_eq!(Severity::High.bumped(), Severity::Critical);
        assert_eq!(Severity::Critical.bumped(), Severity::Critical);
    }
}
