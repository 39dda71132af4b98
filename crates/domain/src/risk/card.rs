//! Signals from the customer's default card: expiring, expired.
//!
//! A card is valid through the last day of its expiry month. For the
//! customer's default, attached card, with `days` = days from `today` to
//! that last day:
//!
//! | days | card_expiring | card_expired |
//! |---|---|---|
//! | > [`RiskConfig::card_expiring_days`] (30) | resolve (`card_not_expiring`) | resolve (`card_not_expiring`) |
//! | ≤ 30 and > [`RiskConfig::card_expiring_high_days`] (7) | raise, Medium | resolve |
//! | ≤ 7 (0 = last valid day) | raise, High | resolve |
//! | < 0 | resolve (`card_expired`) | raise, High |
//!
//! A card that is not the default, or is detached, resolves both
//! (`card_not_default`, `card_detached`). Both kinds share the cause key
//! `pm:<id>:<yyyy>-<mm>`.
//!
//! When the customer's default changes, or the card networks update the
//! same card's expiry, the old key is no longer evaluated by anyone:
//! [`card_replaced`] resolves it.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::ids::{StripeCustomerId, StripePaymentMethodId};

use super::change::{CardEvidence, Evidence, ResolveReason, SignalChange, SignalDraft};
use super::{CauseKey, RiskConfig, Severity, SignalKind, SignalRecord};

/// A card payment method as the service knows it: brand, last four and
/// expiry only (the `payment_method.updated` fact), plus whether it is the
/// customer's default (from `customer.upserted`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardState {
    /// The payment method.
    pub payment_method_id: StripePaymentMethodId,
    /// Its customer.
    pub customer_id: StripeCustomerId,
    /// Card brand, e.g. `visa` (may be empty).
    pub brand: String,
    /// Last four digits.
    pub last4: String,
    /// Expiry month, 1–12.
    pub exp_month: u32,
    /// Expiry year, four digits.
    pub exp_year: i32,
    /// Whether it is the customer's default payment method
    /// (`invoice_settings.default_payment_method`, else `default_source`).
    pub is_default: bool,
    /// Whether it was detached from the customer.
    pub detached: bool,
}

/// Why a card's expiry cannot be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardError {
    /// The month is not 1–12.
    #[error("payment method {payment_method_id}: expiry month {month} is not in 1..=12")]
    InvalidExpiryMonth {
        /// The card.
        payment_method_id: StripePaymentMethodId,
        /// The month given.
        month: u32,
    },
    /// The year is not a four-digit year (two-digit years are a bug upstream).
    #[error("payment method {payment_method_id}: expiry year {year} is not in 1000..=9999")]
    InvalidExpiryYear {
        /// The card.
        payment_method_id: StripePaymentMethodId,
        /// The year given.
        year: i32,
    },
}

impl CardState {
    /// The last day the card is valid: the last day of its expiry month
    /// (29 February in leap years).
    pub fn valid_through(&self) -> Result<NaiveDate, CardError> {
        let id = || self.payment_method_id.clone();
        if !(1..=12).contains(&self.exp_month) {
            return Err(CardError::InvalidExpiryMonth {
                payment_method_id: id(),
                month: self.exp_month,
            });
        }
        if !(1000..=9999).contains(&self.exp_year) {
            return Err(CardError::InvalidExpiryYear {
                payment_method_id: id(),
                year: self.exp_year,
            });
        }
        let (next_year, next_month) = if self.exp_month == 12 {
            (self.exp_year + 1, 1)
        } else {
            (self.exp_year, self.exp_month + 1)
        };
        NaiveDate::from_ymd_opt(next_year, next_month, 1)
            .and_then(|first| first.pred_opt())
            .ok_or(CardError::InvalidExpiryYear {
                payment_method_id: id(),
                year: self.exp_year,
            })
    }

    /// `pm:<id>:<yyyy>-<mm>`.
    pub fn cause_key(&self) -> CauseKey {
        CauseKey::card(&self.payment_method_id, self.exp_year, self.exp_month)
    }

    fn counts(&self) -> bool {
        self.is_default && !self.detached
    }

    fn described(&self) -> String {
        if self.brand.is_empty() {
            format!("Default card ending {}", self.last4)
        } else {
            format!("Default {} card ending {}", self.brand, self.last4)
        }
    }
}

/// The signal changes a card calls for on `today` (the service's date, in
/// UTC; the daily scan passes each day, a card change passes the day of the
/// change).
pub fn card_signals(
    card: &CardState,
    today: NaiveDate,
    config: &RiskConfig,
) -> Result<Vec<SignalChange>, CardError> {
    let valid_through = card.valid_through()?;
    let key = card.cause_key();
    let resolve_both = |reason| {
        vec![
            SignalChange::resolve(SignalKind::CardExpiring, &key, reason),
            SignalChange::resolve(SignalKind::CardExpired, &key, reason),
        ]
    };
    if card.detached {
        return Ok(resolve_both(ResolveReason::CardDetached));
    }
    if !card.counts() {
        return Ok(resolve_both(ResolveReason::CardNotDefault));
    }
    let days = (valid_through - today).num_days();
    let raise = |kind, severity, summary| {
        SignalChange::Raise(SignalDraft {
            kind,
            cause_key: key.clone(),
            severity,
            customer_id: card.customer_id.clone(),
            objects: vec![card.payment_method_id.to_string()],
            evidence: Evidence::Card(CardEvidence {
                payment_method_id: card.payment_method_id.clone(),
                brand: card.brand.clone(),
                last4: card.last4.clone(),
                exp_month: card.exp_month,
                exp_year: card.exp_year,
                valid_through,
                days_until_expiry: days,
            }),
            summary,
        })
    };
    let changes = if days < 0 {
        vec![
            SignalChange::resolve(SignalKind::CardExpiring, &key, ResolveReason::CardExpired),
            raise(
                SignalKind::CardExpired,
                Severity::High,
                format!("{} expired on {valid_through}", card.described()),
            ),
        ]
    } else if days <= i64::from(config.card_expiring_days) {
        let severity = if days <= i64::from(config.card_expiring_high_days) {
            Severity::High
        } else {
            Severity::Medium
        };
        let when = match days {
            0 => "today, its last valid day".to_owned(),
            1 => "in 1 day".to_owned(),
            n => format!("in {n} days"),
        };
        vec![
            raise(
                SignalKind::CardExpiring,
                severity,
                format!("{} expires on {valid_through} ({when})", card.described()),
            ),
            SignalChange::resolve(
                SignalKind::CardExpired,
                &key,
                ResolveReason::CardNotExpiring,
            ),
        ]
    } else {
        resolve_both(ResolveReason::CardNotExpiring)
    };
    Ok(changes)
}

/// Resolves the open card signals of one customer that no longer concern
/// its current default card: the default changed to another card, the same
/// card got a new expiry (so a new key), or the customer has no default any
/// more (`current_default` none, detached or not default).
///
/// `signals` are the customer's signals as stored; other kinds and
/// resolved ones are ignored, so the service can pass them all. Call it on
/// every `customer.upserted` and `payment_method.updated` fact of the
/// customer, after [`card_signals`] of the current default. The result is
/// sorted and has one change per `(kind, cause_key)`.
pub fn card_replaced(
    signals: &[SignalRecord],
    current_default: Option<&CardState>,
) -> Vec<SignalChange> {
    let current = current_default.filter(|card| card.counts());
    let current_key = current.map(CardState::cause_key);
    let reason = if current.is_some() {
        ResolveReason::CardReplaced
    } else {
        ResolveReason::CardRemoved
    };
    let mut stale: Vec<(SignalKind, &CauseKey)> = signals
        .iter()
        .filter(|s| s.is_open() && s.kind.is_card())
        .filter(|s| Some(&s.cause_key) != current_key.as_ref())
        .map(|s| (s.kind, &s.cause_key))
        .collect();
    stale.sort();
    stale.dedup();
    stale
        .into_iter()
        .map(|(kind, key)| SignalChange::resolve(kind, key, reason))
        .collect()
}

#[cfg(test)]
mod tests;
