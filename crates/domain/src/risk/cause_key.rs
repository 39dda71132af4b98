//! Stable keys naming the cause of a signal.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{StripeInvoiceId, StripePaymentMethodId, StripeSubscriptionId};

/// The cause of a signal, as a stable string: with the [`SignalKind`] and
/// the tenant it is the storage key of a signal, so the same cause always
/// yields the same key and different causes different keys.
///
/// | cause | key |
/// |---|---|
/// | an invoice (payment failed, dunning, action required, uncollectible) | `invoice:in_123` |
/// | a subscription's status or cancellation | `subscription:sub_1` |
/// | one downgrade of a subscription | `subscription:sub_1:2026-01-05T10:00:00Z` (when it happened) |
/// | a card and its expiry | `pm:pm_1:2026-12` |
/// | a dispute | `dispute:dp_1` |
///
/// The card key carries the expiry because a card updated in place (the
/// same `pm_…` with a new expiry, from the card networks' account updater)
/// is a new cause; the old key is resolved by
/// [`card_replaced`](super::card_replaced).
///
/// [`SignalKind`]: super::SignalKind
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CauseKey(String);

impl CauseKey {
    /// `invoice:<id>`.
    pub fn invoice(id: &StripeInvoiceId) -> Self {
        Self(format!("invoice:{id}"))
    }

    /// `subscription:<id>`.
    pub fn subscription(id: &StripeSubscriptionId) -> Self {
        Self(format!("subscription:{id}"))
    }

    /// `subscription:<id>:<RFC 3339 time, seconds, Z>`: one downgrade.
    pub fn downgrade(id: &StripeSubscriptionId, occurred_at: DateTime<Utc>) -> Self {
        Self(format!(
            "subscription:{id}:{}",
            occurred_at.to_rfc3339_opts(SecondsFormat::Secs, true)
        ))
    }

    /// `pm:<id>:<yyyy>-<mm>`.
    pub fn card(id: &StripePaymentMethodId, exp_year: i32, exp_month: u32) -> Self {
        Self(format!("pm:{id}:{exp_year:04}-{exp_month:02}"))
    }

    /// `dispute:<id>`.
    pub fn dispute(id: &super::DisputeId) -> Self {
        Self(format!("dispute:{id}"))
    }

    /// A key as read back from storage. No check: keys are only ever
    /// compared, and a key this crate did not make matches nothing it makes.
    pub fn from_stored(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CauseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::super::DisputeId;
    use super::*;

    #[test]
    fn keys_have_the_documented_shapes() {
        let invoice = StripeInvoiceId::parse("in_123").unwrap();
        let sub = StripeSubscriptionId::parse("sub_1").unwrap();
        let pm = StripePaymentMethodId::parse("pm_1").unwrap();
        let at = Utc.with_ymd_and_hms(2026, 1, 5, 10, 0, 0).unwrap();
        assert_eq!(CauseKey::invoice(&invoice).as_str(), "invoice:in_123");
        assert_eq!(CauseKey::subscription(&sub).as_str(), "subscription:sub_1");
        assert_eq!(
            CauseKey::downgrade(&sub, at).as_str(),
            "subscription:sub_1:2026-01-05T10:00:00Z"
        );
        assert_eq!(CauseKey::card(&pm, 2026, 3).as_str(), "pm:pm_1:2026-03");
        assert_eq!(CauseKey::card(&pm, 2026, 12).as_str(), "pm:pm_1:2026-12");
        assert_eq!(
            CauseKey::dispute(&DisputeId::parse("dp_1").unwrap()).as_str(),
            "dispute:dp_1"
        );
    }

    #[test]
    fn downgrade_keys_drop_sub_second_noise_but_keep_seconds() {
        let sub = StripeSubscriptionId::parse("sub_1").unwrap();
        let at = Utc.with_ymd_and_hms(2026, 1, 5, 10, 0, 7).unwrap();
        let later = at + chrono::TimeDelta::milliseconds(400);
        assert_eq!(
            CauseKey::downgrade(&sub, at),
            CauseKey::downgrade(&sub, later)
        );
        assert_ne!(
            CauseKey::downgrade(&sub, at),
            CauseKey::downgrade(&sub, at + chrono::TimeDelta::seconds(1))
        );
    }

    #[test]
    fn stored_keys_compare_equal_to_made_keys_and_serialise_as_strings() {
        let pm = StripePaymentMethodId::parse("pm_1").unwrap();
        let made = CauseKey::card(&pm, 2026, 12);
        assert_eq!(CauseKey::from_stored("pm:pm_1:2026-12"), made);
        assert_eq!(serde_json::to_string(&made).unwrap(), "\"pm:pm_1:2026-12\"");
        assert_eq!(
            serde_json::from_str::<CauseKey>("\"pm:pm_1:2026-12\"").unwrap(),
            made
        );
        assert_eq!(made.to_string(), "pm:pm_1:2026-12");
    }
}
