//! Signals from a dispute (a chargeback, or the inquiry before one).
//!
//! | status | change | severity |
//! |---|---|---|
//! | `needs_response` | raise | Critical: evidence is due, money is withdrawn |
//! | `warning_needs_response` | raise | High: an inquiry, not yet a chargeback |
//! | `under_review` | raise | High |
//! | `warning_under_review` | raise | Medium |
//! | `won` / `lost` / `warning_closed` / `prevented` / `charge_refunded` | resolve (`dispute_won`, `dispute_lost`, `dispute_closed`, `dispute_prevented`, `charge_refunded`) | |
//!
//! Key `dispute:<id>`. A lost dispute is resolved like the others: it is
//! over and nothing the CSM does reopens it. What it leaves behind is the
//! resolved signal's fading deduction in the health score and the
//! `dispute_lost` reason on record; the lost money is Stripe's ledger, not a
//! new signal.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ids::{IdError, StripeCustomerId, MAX_STRIPE_ID_LEN};
use crate::money::{Currency, Money};

use super::change::{DisputeEvidence, Evidence, ResolveReason, SignalChange, SignalDraft};
use super::{CauseKey, Severity, SignalKind};

/// A Stripe dispute id, `dp_…` (or the older `du_…`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DisputeId(String);

impl DisputeId {
    /// Prefixes a dispute id starts with.
    pub const PREFIXES: &'static [&'static str] = &["dp_", "du_"];

    /// Parses `input` by Stripe's id rules (prefix, then `[A-Za-z0-9_]`, at
    /// most 255 bytes).
    pub fn parse(input: &str) -> Result<Self, IdError> {
        let kind = "DisputeId";
        if input.is_empty() {
            return Err(IdError::Empty { kind });
        }
        if input.len() > MAX_STRIPE_ID_LEN {
            return Err(IdError::TooLong {
                kind,
                len: input.len(),
                max: MAX_STRIPE_ID_LEN,
            });
        }
        if let Some((index, character)) = input
            .char_indices()
            .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '_'))
        {
            return Err(IdError::BadCharacter {
                kind,
                character,
                index,
                allowed: "[A-Za-z0-9_]",
            });
        }
        match Self::PREFIXES.iter().find(|p| input.starts_with(**p)) {
            None => Err(IdError::WrongPrefix {
                kind,
                expected: Self::PREFIXES,
            }),
            Some(prefix) if input.len() == prefix.len() => {
                Err(IdError::NothingAfterPrefix { kind })
            }
            Some(_) => Ok(Self(input.to_owned())),
        }
    }

    /// The id as Stripe spells it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DisputeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for DisputeId {
    type Err = IdError;
    fn from_str(input: &str) -> Result<Self, IdError> {
        Self::parse(input)
    }
}

impl Serialize for DisputeId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for DisputeId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = std::borrow::Cow::<str>::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// Stripe's dispute `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisputeStatus {
    /// `warning_needs_response`: an inquiry awaiting a response.
    WarningNeedsResponse,
    /// `warning_under_review`: an inquiry under review.
    WarningUnderReview,
    /// `warning_closed`: the inquiry closed without a chargeback.
    WarningClosed,
    /// `needs_response`: a chargeback; evidence is due.
    NeedsResponse,
    /// `under_review`: evidence submitted, the issuer decides.
    UnderReview,
    /// `won`.
    Won,
    /// `lost`.
    Lost,
    /// `prevented`: stopped before it became a chargeback.
    Prevented,
    /// `charge_refunded`: legacy status of older API versions.
    ChargeRefunded,
}

impl DisputeStatus {
    /// Every status, in declaration order.
    pub const ALL: [DisputeStatus; 9] = [
        Self::WarningNeedsResponse,
        Self::WarningUnderReview,
        Self::WarningClosed,
        Self::NeedsResponse,
        Self::UnderReview,
        Self::Won,
        Self::Lost,
        Self::Prevented,
        Self::ChargeRefunded,
    ];

    /// Stripe's spelling, e.g. `"needs_response"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WarningNeedsResponse => "warning_needs_response",
            Self::WarningUnderReview => "warning_under_review",
            Self::WarningClosed => "warning_closed",
            Self::NeedsResponse => "needs_response",
            Self::UnderReview => "under_review",
            Self::Won => "won",
            Self::Lost => "lost",
            Self::Prevented => "prevented",
            Self::ChargeRefunded => "charge_refunded",
        }
    }
}

impl fmt::Display for DisputeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of Stripe's dispute statuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown dispute status {0:?}")]
pub struct UnknownDisputeStatus(pub String);

impl FromStr for DisputeStatus {
    type Err = UnknownDisputeStatus;
    fn from_str(s: &str) -> Result<Self, UnknownDisputeStatus> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownDisputeStatus(s.to_owned()))
    }
}

/// A dispute as the service knows it (`charge.dispute.*`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisputeState {
    /// The dispute.
    pub dispute_id: DisputeId,
    /// The disputed charge (`ch_…` or `py_…`).
    pub charge_id: String,
    /// The charge's customer.
    pub customer_id: StripeCustomerId,
    /// Disputed amount, minor units of `currency`.
    pub amount: i64,
    /// Currency of `amount`.
    pub currency: Currency,
    /// Stripe's `reason`, e.g. `fraudulent`, `subscription_canceled`.
    pub reason: String,
    /// `status`.
    pub status: DisputeStatus,
    /// `evidence_details.due_by`, when a response is due.
    pub evidence_due_by: Option<DateTime<Utc>>,
}

/// The signal change a dispute's current state calls for.
pub fn dispute_signals(dispute: &DisputeState) -> Vec<SignalChange> {
    let key = CauseKey::dispute(&dispute.dispute_id);
    let amount = Money::new(dispute.amount, dispute.currency);
    let reason = &dispute.reason;
    let due = dispute
        .evidence_due_by
        .map(|at| format!(" by {}", at.format("%Y-%m-%d")))
        .unwrap_or_default();
    let resolve = |why| vec![SignalChange::resolve(SignalKind::DisputeOpened, &key, why)];
    let (severity, summary) = match dispute.status {
        DisputeStatus::NeedsResponse => (
            Severity::Critical,
            format!("Dispute of {amount} opened ({reason}): response needed{due}"),
        ),
        DisputeStatus::UnderReview => (
            Severity::High,
            format!("Dispute of {amount} ({reason}) under review"),
        ),
        DisputeStatus::WarningNeedsResponse => (
            Severity::High,
            format!("Inquiry about a {amount} charge ({reason}): response needed{due}"),
        ),
        DisputeStatus::WarningUnderReview => (
            Severity::Medium,
            format!("Inquiry about a {amount} charge ({reason}) under review"),
        ),
        DisputeStatus::Won => return resolve(ResolveReason::DisputeWon),
        DisputeStatus::Lost => return resolve(ResolveReason::DisputeLost),
        DisputeStatus::WarningClosed => return resolve(ResolveReason::DisputeClosed),
        DisputeStatus::Prevented => return resolve(ResolveReason::DisputePrevented),
        DisputeStatus::ChargeRefunded => return resolve(ResolveReason::ChargeRefunded),
    };
    vec![SignalChange::Raise(SignalDraft {
        kind: SignalKind::DisputeOpened,
        cause_key: key.clone(),
        severity,
        customer_id: dispute.customer_id.clone(),
        objects: vec![dispute.dispute_id.to_string(), dispute.charge_id.clone()],
        evidence: Evidence::Dispute(DisputeEvidence {
            dispute_id: dispute.dispute_id.clone(),
            charge_id: dispute.charge_id.clone(),
            amount,
            reason: dispute.reason.clone(),
            status: dispute.status,
            evidence_due_by: dispute.evidence_due_by,
        }),
        summary,
    })]
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    const KEY: &str = "dispute:dp_1";

    #[test]
    fn dispute_ids_are_parsed_like_stripe_ids() {
        assert_eq!(DisputeId::parse("dp_1Abc").unwrap().as_str(), "dp_1Abc");
        assert_eq!("du_9".parse::<DisputeId>().unwrap().to_string(), "du_9");
        assert_eq!(
            DisputeId::parse(""),
            Err(IdError::Empty { kind: "DisputeId" })
        );
        assert_eq!(
            DisputeId::parse("ch_1"),
            Err(IdError::WrongPrefix {
                kind: "DisputeId",
                expected: DisputeId::PREFIXES
            })
        );
        assert_eq!(
            DisputeId::parse("dp_"),
            Err(IdError::NothingAfterPrefix { kind: "DisputeId" })
        );
        assert!(matches!(
            DisputeId::parse("dp_1 2"),
            Err(IdError::BadCharacter {
                character: ' ',
                index: 4,
                ..
            })
        ));
        let long = format!("dp_{}", "a".repeat(300));
        assert!(matches!(
            DisputeId::parse(&long),
            Err(IdError::TooLong { len: 303, .. })
        ));
        assert_eq!(
            serde_json::from_str::<DisputeId>("\"dp_1\"").unwrap(),
            DisputeId::parse("dp_1").unwrap()
        );
        assert!(serde_json::from_str::<DisputeId>("\"in_1\"").is_err());
        assert_eq!(
            serde_json::to_string(&DisputeId::parse("dp_1").unwrap()).unwrap(),
            "\"dp_1\""
        );
    }

    #[test]
    fn statuses_parse_from_stripe_strings() {
        for status in DisputeStatus::ALL {
            assert_eq!(status.as_str().parse::<DisputeStatus>().unwrap(), status);
            assert_eq!(
                serde_json::to_string(&status).unwrap(),
                format!("\"{status}\"")
            );
        }
        for bad in ["", "open", "closed", "Won"] {
            assert_eq!(
                bad.parse::<DisputeStatus>(),
                Err(UnknownDisputeStatus(bad.to_owned()))
            );
        }
    }

    #[test]
    fn open_disputes_raise_by_urgency() {
        let severity = |status| raised(&dispute_signals(&dispute(status)));
        let expect = |severity| vec![(SignalKind::DisputeOpened, KEY.to_owned(), severity)];
        assert_eq!(
            severity(DisputeStatus::NeedsResponse),
            expect(Severity::Critical)
        );
        assert_eq!(severity(DisputeStatus::UnderReview), expect(Severity::High));
        assert_eq!(
            severity(DisputeStatus::WarningNeedsResponse),
            expect(Severity::High)
        );
        assert_eq!(
            severity(DisputeStatus::WarningUnderReview),
            expect(Severity::Medium)
        );
    }

    #[test]
    fn summaries_name_amount_reason_and_deadline() {
        let summary = |status| {
            dispute_signals(&dispute(status))[0]
                .as_raise()
                .unwrap()
                .summary
                .clone()
        };
        assert_eq!(
            summary(DisputeStatus::NeedsResponse),
            "Dispute of 490.00 USD opened (fraudulent): response needed by 2026-01-20"
        );
        assert_eq!(
            summary(DisputeStatus::UnderReview),
            "Dispute of 490.00 USD (fraudulent) under review"
        );
        assert_eq!(
            summary(DisputeStatus::WarningNeedsResponse),
            "Inquiry about a 490.00 USD charge (fraudulent): response needed by 2026-01-20"
        );
        assert_eq!(
            summary(DisputeStatus::WarningUnderReview),
            "Inquiry about a 490.00 USD charge (fraudulent) under review"
        );
        let no_deadline = DisputeState {
            evidence_due_by: None,
            ..dispute(DisputeStatus::NeedsResponse)
        };
        assert_eq!(
            dispute_signals(&no_deadline)[0].as_raise().unwrap().summary,
            "Dispute of 490.00 USD opened (fraudulent): response needed"
        );
    }

    #[test]
    fn evidence_and_objects() {
        let changes = dispute_signals(&DisputeState {
            currency: Currency::JPY,
            amount: 5_000,
            ..dispute(DisputeStatus::NeedsResponse)
        });
        let draft = draft(&changes, SignalKind::DisputeOpened);
        assert_eq!(draft.objects, ["dp_1", "ch_1"]);
        assert!(draft.summary.starts_with("Dispute of 5,000 JPY opened"));
        let Evidence::Dispute(evidence) = &draft.evidence else {
            panic!("not dispute evidence");
        };
        assert_eq!(evidence.amount, Money::new(5_000, Currency::JPY));
        assert_eq!(evidence.status, DisputeStatus::NeedsResponse);
        assert_eq!(evidence.reason, "fraudulent");
        assert_eq!(evidence.evidence_due_by, Some(at(2026, 1, 20, 23)));
        assert_eq!(evidence.charge_id, "ch_1");
    }

    #[test]
    fn closed_disputes_resolve_with_their_outcome() {
        let reason = |status| resolved(&dispute_signals(&dispute(status)));
        let expect = |why| vec![(SignalKind::DisputeOpened, KEY.to_owned(), why)];
        assert_eq!(
            reason(DisputeStatus::Won),
            expect(ResolveReason::DisputeWon)
        );
        assert_eq!(
            reason(DisputeStatus::Lost),
            expect(ResolveReason::DisputeLost)
        );
        assert_eq!(
            reason(DisputeStatus::WarningClosed),
            expect(ResolveReason::DisputeClosed)
        );
        assert_eq!(
            reason(DisputeStatus::Prevented),
            expect(ResolveReason::DisputePrevented)
        );
        assert_eq!(
            reason(DisputeStatus::ChargeRefunded),
            expect(ResolveReason::ChargeRefunded)
        );
        for status in [DisputeStatus::Won, DisputeStatus::Lost] {
            assert_eq!(raised(&dispute_signals(&dispute(status))), []);
        }
    }

    #[test]
    fn escalation_from_inquiry_to_chargeback_keeps_the_cause() {
        let inquiry = dispute_signals(&dispute(DisputeStatus::WarningNeedsResponse));
        let chargeback = dispute_signals(&dispute(DisputeStatus::NeedsResponse));
        assert_eq!(inquiry[0].cause_key(), chargeback[0].cause_key());
        assert_eq!(
            dispute_signals(&dispute(DisputeStatus::NeedsResponse)),
            chargeback,
            "replay"
        );
    }
}
