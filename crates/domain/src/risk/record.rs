//! Signals as the service stores them, and the age-out of one-off signals.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::change::{ResolveReason, SignalChange};
use super::{CauseKey, RiskConfig, Severity, SignalKind};

/// A signal as stored: what [`health_score`](super::health_score) scores
/// and what [`card_replaced`](super::card_replaced) and [`age_out_signals`]
/// look through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalRecord {
    /// The service's id of this signal (a re-raise after a resolve is a new
    /// signal with a new id). Opaque here; copied into health components.
    pub id: String,
    /// Its kind.
    pub kind: SignalKind,
    /// Its cause.
    pub cause_key: CauseKey,
    /// Its current (or last, once resolved) severity.
    pub severity: Severity,
    /// When it was raised.
    pub raised_at: DateTime<Utc>,
    /// When it was resolved; none while open.
    pub resolved_at: Option<DateTime<Utc>>,
}

impl SignalRecord {
    /// Whether it is still open.
    pub fn is_open(&self) -> bool {
        self.resolved_at.is_none()
    }
}

/// Resolves (`aged_out`) the open one-off signals (downgrade, canceled:
/// [`SignalKind::is_one_off`]) raised at least
/// [`RiskConfig::one_off_open_days`] before `now`: nothing else ever clears
/// them. The daily scan calls it with the tenant's open signals; other
/// kinds are ignored. Sorted, one change per `(kind, cause_key)`.
pub fn age_out_signals(
    signals: &[SignalRecord],
    now: DateTime<Utc>,
    config: &RiskConfig,
) -> Vec<SignalChange> {
    let window = TimeDelta::days(i64::from(config.one_off_open_days));
    let mut due: Vec<(SignalKind, &CauseKey)> = signals
        .iter()
        .filter(|s| s.is_open() && s.kind.is_one_off() && now - s.raised_at >= window)
        .map(|s| (s.kind, &s.cause_key))
        .collect();
    due.sort();
    due.dedup();
    due.into_iter()
        .map(|(kind, key)| SignalChange::resolve(kind, key, ResolveReason::AgedOut))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    fn record(kind: SignalKind, key: &str, raised_at: DateTime<Utc>) -> SignalRecord {
        SignalRecord {
            id: key.to_owned(),
            kind,
            cause_key: CauseKey::from_stored(key),
            severity: Severity::High,
            raised_at,
            resolved_at: None,
        }
    }

    #[test]
    fn one_off_signals_age_out_after_the_window() {
        let now = at(2026, 3, 1, 0);
        let signals = [
            record(
                SignalKind::SubscriptionDowngrade,
                "subscription:sub_1:a",
                now - TimeDelta::days(30),
            ),
            record(
                SignalKind::SubscriptionDowngrade,
                "subscription:sub_1:b",
                now - TimeDelta::days(30) + TimeDelta::seconds(1),
            ),
            record(
                SignalKind::SubscriptionCanceled,
                "subscription:sub_2",
                now - TimeDelta::days(400),
            ),
            // State signals never age out, however old.
            record(
                SignalKind::PaymentFailed,
                "invoice:in_1",
                now - TimeDelta::days(400),
            ),
            record(
                SignalKind::CancellationRequested,
                "subscription:sub_3",
                now - TimeDelta::days(400),
            ),
            SignalRecord {
                resolved_at: Some(now - TimeDelta::days(1)),
                ..record(
                    SignalKind::SubscriptionCanceled,
                    "subscription:sub_4",
                    now - TimeDelta::days(90),
                )
            },
        ];
        assert_eq!(
            resolved(&age_out_signals(&signals, now, &RiskConfig::default())),
            [
                (
                    SignalKind::SubscriptionDowngrade,
                    "subscription:sub_1:a".to_owned(),
                    ResolveReason::AgedOut
                ),
                (
                    SignalKind::SubscriptionCanceled,
                    "subscription:sub_2".to_owned(),
                    ResolveReason::AgedOut
                ),
            ]
        );
        let short = RiskConfig {
            one_off_open_days: 1,
            ..RiskConfig::default()
        };
        assert_eq!(age_out_signals(&signals, now, &short).len(), 3);
    }

    #[test]
    fn age_out_is_order_independent_and_deduplicated() {
        let now = at(2026, 3, 1, 0);
        let old = now - TimeDelta::days(45);
        let a = record(
            SignalKind::SubscriptionDowngrade,
            "subscription:sub_1:a",
            old,
        );
        let b = record(SignalKind::SubscriptionCanceled, "subscription:sub_1", old);
        let config = RiskConfig::default();
        let forward = age_out_signals(&[a.clone(), b.clone(), a.clone()], now, &config);
        let backward = age_out_signals(&[b, a], now, &config);
        assert_eq!(forward, backward);
        assert_eq!(forward.len(), 2);
    }

    #[test]
    fn a_signal_raised_in_the_future_does_not_age_out() {
        let now = at(2026, 3, 1, 0);
        let skewed = record(
            SignalKind::SubscriptionDowngrade,
            "k",
            now + TimeDelta::days(2),
        );
        assert_eq!(age_out_signals(&[skewed], now, &RiskConfig::default()), []);
    }
}
