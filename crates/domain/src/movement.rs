//! Classifying an MRR change, for a subscription's or a customer's change
//! history.
//!
//! | before | after | previously churned | movement |
//! |---|---|---|---|
//! | none or 0 | > 0 | no | [`MovementKind::New`] |
//! | none or 0 | > 0 | yes | [`MovementKind::Reactivation`] |
//! | > 0 | 0 | – | [`MovementKind::Churn`] |
//! | > 0 | more | – | [`MovementKind::Expansion`] |
//! | > 0 | less (but > 0) | – | [`MovementKind::Contraction`] |
//! | x | x, or none/0 → 0 | – | [`MovementKind::Unchanged`] |
//!
//! "Before 0" covers a subscription that existed without counting (a trial
//! converting is `New`). "Previously churned" is the caller's history: the
//! subscription or customer had MRR once and went to 0 (e.g. a cancellation
//! withdrawn under [`crate::CancelAtPeriodEnd::StopAtRequest`], a paused
//! subscription resumed, or a churned customer's new subscription).
//!
//! Amounts are compared in one currency. A customer paying in several
//! currencies is classified per currency; a change of currency is an error
//! rather than a silent conversion.

use serde::{Deserialize, Serialize};

use crate::money::{Currency, Money, MoneyError};

/// The kind of an MRR movement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MovementKind {
    /// First MRR of a subscription or customer that never churned.
    New,
    /// MRR went up from a positive amount.
    Expansion,
    /// MRR went down but stays positive.
    Contraction,
    /// MRR went from positive to 0.
    Churn,
    /// MRR came back after a churn.
    Reactivation,
    /// No change in MRR.
    Unchanged,
}

impl MovementKind {
    /// Lowercase name, e.g. `"expansion"`, as stored in change history.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Expansion => "expansion",
            Self::Contraction => "contraction",
            Self::Churn => "churn",
            Self::Reactivation => "reactivation",
            Self::Unchanged => "unchanged",
        }
    }
}

/// A movement name that is not one of [`MovementKind::as_str`]'s (tested through
/// `risk::parse_movement`, which the risk engine calls).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown movement {0:?}; expected new, expansion, contraction, churn, reactivation or unchanged")]
pub struct UnknownMovement(pub String);

impl std::str::FromStr for MovementKind {
    type Err = UnknownMovement;
    fn from_str(name: &str) -> Result<Self, UnknownMovement> {
        [
            Self::New,
            Self::Expansion,
            Self::Contraction,
            Self::Churn,
            Self::Reactivation,
            Self::Unchanged,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == name)
        .ok_or_else(|| UnknownMovement(name.to_owned()))
    }
}

/// A classified MRR change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Movement {
    /// What kind of change it is.
    pub kind: MovementKind,
    /// `after − before` (before = 0 when absent): positive for new,
    /// expansion and reactivation, negative for contraction and churn.
    pub delta: Money,
}

/// Why a change cannot be classified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MovementError {
    /// `before` and `after` are in different currencies.
    #[error("MRR changed currency from {before} to {after}")]
    CurrencyChanged {
        /// Currency before.
        before: Currency,
        /// Currency after.
        after: Currency,
    },
    /// The delta does not fit.
    #[error(transparent)]
    Money(#[from] MoneyError),
}

/// Classifies the MRR change from `before` (`None`: not seen before) to
/// `after`. Negative amounts are treated as 0 (MRR is never negative).
pub fn classify_movement(
    before: Option<Money>,
    after: Money,
    previously_churned: bool,
) -> Result<Movement, MovementError> {
    let before = before.unwrap_or(Money::zero(after.currency));
    if before.currency != after.currency {
        return Err(MovementError::CurrencyChanged {
            before: before.currency,
            after: after.currency,
        });
    }
    let (old, new) = (before.minor.max(0), after.minor.max(0));
    let kind = match (old > 0, new > 0) {
        (false, false) => MovementKind::Unchanged,
        (false, true) if previously_churned => MovementKind::Reactivation,
        (false, true) => MovementKind::New,
        (true, false) => MovementKind::Churn,
        (true, true) if new > old => MovementKind::Expansion,
        (true, true) if new < old => MovementKind::Contraction,
        (true, true) => MovementKind::Unchanged,
    };
    let delta = Money::new(new, after.currency).checked_sub(Money::new(old, after.currency))?;
    Ok(Movement { kind, delta })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(minor: i64) -> Money {
        Money::new(minor, Currency::USD)
    }

    fn kind(before: Option<i64>, after: i64, previously_churned: bool) -> MovementKind {
        classify_movement(before.map(usd), usd(after), previously_churned)
            .unwrap()
            .kind
    }

    #[test]
    fn first_mrr_is_new() {
        assert_eq!(kind(None, 5000, false), MovementKind::New);
        // A trial (counted 0) converting to paid.
        assert_eq!(kind(Some(0), 5000, false), MovementKind::New);
    }

    #[test]
    fn mrr_after_a_churn_is_reactivation() {
        assert_eq!(kind(Some(0), 5000, true), MovementKind::Reactivation);
        assert_eq!(kind(None, 5000, true), MovementKind::Reactivation);
    }

    #[test]
    fn going_to_zero_is_churn() {
        assert_eq!(kind(Some(5000), 0, false), MovementKind::Churn);
        assert_eq!(kind(Some(5000), 0, true), MovementKind::Churn);
    }

    #[test]
    fn up_is_expansion_and_down_is_contraction() {
        assert_eq!(kind(Some(5000), 7500, false), MovementKind::Expansion);
        assert_eq!(kind(Some(5000), 2500, false), MovementKind::Contraction);
        assert_eq!(kind(Some(5000), 1, true), MovementKind::Contraction);
    }

    #[test]
    fn no_change_is_unchanged() {
        assert_eq!(kind(Some(5000), 5000, false), MovementKind::Unchanged);
        assert_eq!(kind(None, 0, false), MovementKind::Unchanged);
        assert_eq!(kind(Some(0), 0, true), MovementKind::Unchanged);
    }

    #[test]
    fn negative_amounts_count_as_zero() {
        assert_eq!(kind(Some(-100), 5000, false), MovementKind::New);
        assert_eq!(kind(Some(5000), -100, false), MovementKind::Churn);
    }

    #[test]
    fn delta_is_after_minus_before() {
        let delta = |before: Option<i64>, after| {
            classify_movement(before.map(usd), usd(after), false)
                .unwrap()
                .delta
        };
        assert_eq!(delta(None, 5000), usd(5000));
        assert_eq!(delta(Some(5000), 7500), usd(2500));
        assert_eq!(delta(Some(5000), 2000), usd(-3000));
        assert_eq!(delta(Some(5000), 0), usd(-5000));
        assert_eq!(delta(Some(5000), 5000), usd(0));
    }

    #[test]
    fn currency_change_is_an_error() {
        assert_eq!(
            classify_movement(Some(usd(100)), Money::new(100, Currency::EUR), false),
            Err(MovementError::CurrencyChanged {
                before: Currency::USD,
                after: Currency::EUR
            })
        );
    }

    #[test]
    fn kinds_serialise_as_their_names() {
        for kind in [
            MovementKind::New,
            MovementKind::Expansion,
            MovementKind::Contraction,
            MovementKind::Churn,
            MovementKind::Reactivation,
            MovementKind::Unchanged,
        ] {
            assert_eq!(
                serde_json::to_string(&kind).unwrap(),
                format!("\"{}\"", kind.as_str())
            );
        }
    }
}
