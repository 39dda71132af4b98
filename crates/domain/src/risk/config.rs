//! Tunables of the signal rules ([`RiskConfig`]) and of the health score
//! ([`HealthWeights`]), with documented defaults.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::money::{Currency, Money};

use super::{Severity, SignalKind};

/// A config field out of range; names the key (`risk.…` or `health.…`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{key}: {problem}")]
pub struct RiskConfigError {
    /// The offending key, with its section, e.g. `risk.card_expiring_days`.
    pub key: String,
    /// What is wrong with it.
    pub problem: String,
}

fn fail<T>(key: impl Into<String>, problem: impl Into<String>) -> Result<T, RiskConfigError> {
    Err(RiskConfigError {
        key: key.into(),
        problem: problem.into(),
    })
}

/// Tunables of the signal rules. Every field has a default, so an empty
/// section is valid; check a loaded config with [`RiskConfig::validate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RiskConfig {
    /// From this many attempts on one invoice, a failed payment is High.
    /// Default 2 ("at risk within minutes of the second failure").
    pub payment_failed_high_attempts: u32,
    /// From this many attempts, a failed payment is Critical. Default 3
    /// ("≥ 3 failed charges weigh more than 1–2").
    pub payment_failed_critical_attempts: u32,
    /// Per currency, the `amount_remaining` (minor units) from which an
    /// invoice is high-value: its payment signals go one severity up and an
    /// uncollectible one is Critical. Currencies not listed have no
    /// high-value rule. Default about 1,000 USD: `usd eur gbp chf` 100000,
    /// `cad aud` 150000, `jpy` 150000 (zero-decimal: ¥150,000).
    pub high_value_amounts: BTreeMap<Currency, i64>,
    /// A payment late for this many whole days (since its first failure or
    /// due date) is Critical whatever the attempt count: Baremetrics counts
    /// a customer delinquent for more than 30 days as churned. Default 30.
    pub delinquent_critical_days: u32,
    /// A downgrade dropping MRR by at least this percentage is Medium; less
    /// is Low. Default 10 (the market's "MRR drop > 10 %").
    pub downgrade_medium_percent: f64,
    /// A downgrade dropping MRR by at least this percentage is High.
    /// Default 30.
    pub downgrade_high_percent: f64,
    /// A downgrade dropping MRR by at least this percentage is Critical.
    /// Default 50.
    pub downgrade_critical_percent: f64,
    /// The default card is "expiring" from this many days before the end of
    /// its expiry month. Default 30.
    pub card_expiring_days: u32,
    /// ... and High from this many days before. Default 7.
    pub card_expiring_high_days: u32,
    /// One-off signals (downgrade, canceled) stay open this many days, then
    /// [`age_out_signals`](super::age_out_signals) resolves them and their
    /// deduction fades like any resolved signal's. Also: a cancellation
    /// first seen already done is raised only if it happened within this
    /// window (older ones are history from a backfill). Default 30.
    pub one_off_open_days: u32,
}

impl Default for RiskConfig {
    fn default() -> Self {
        let high_value_amounts = [
            ("usd", 100_000),
            ("eur", 100_000),
            ("gbp", 100_000),
            ("chf", 100_000),
            ("cad", 150_000),
            ("aud", 150_000),
            ("jpy", 150_000),
        ]
        .into_iter()
        .filter_map(|(code, minor)| Some((Currency::parse(code).ok()?, minor)))
        .collect();
        Self {
            payment_failed_high_attempts: 2,
            payment_failed_critical_attempts: 3,
            high_value_amounts,
            delinquent_critical_days: 30,
            downgrade_medium_percent: 10.0,
            downgrade_high_percent: 30.0,
            downgrade_critical_percent: 50.0,
            card_expiring_days: 30,
            card_expiring_high_days: 7,
            one_off_open_days: 30,
        }
    }
}

impl RiskConfig {
    /// Checks ranges and orders (High before Critical, Medium ≤ High ≤
    /// Critical drops, the High card window inside the expiring one).
    pub fn validate(&self) -> Result<(), RiskConfigError> {
        if self.payment_failed_high_attempts < 1 {
            return fail("risk.payment_failed_high_attempts", "must be at least 1");
        }
        if self.payment_failed_critical_attempts < self.payment_failed_high_attempts {
            return fail(
                "risk.payment_failed_critical_attempts",
                "must not be below payment_failed_high_attempts",
            );
        }
        for (currency, amount) in &self.high_value_amounts {
            if *amount <= 0 {
                return fail(
                    format!("risk.high_value_amounts.{currency}"),
                    format!("{amount} is not a positive amount in minor units"),
                );
            }
        }
        if self.delinquent_critical_days < 1 {
            return fail("risk.delinquent_critical_days", "must be at least 1");
        }
        let drops = [
            (
                "risk.downgrade_medium_percent",
                self.downgrade_medium_percent,
            ),
            ("risk.downgrade_high_percent", self.downgrade_high_percent),
            (
                "risk.downgrade_critical_percent",
                self.downgrade_critical_percent,
            ),
        ];
        for (key, value) in drops {
            if !(value > 0.0 && value <= 100.0) {
                return fail(key, format!("{value} is not a percentage in (0, 100]"));
            }
        }
        if self.downgrade_high_percent < self.downgrade_medium_percent {
            return fail(
                "risk.downgrade_high_percent",
                "must not be below downgrade_medium_percent",
            );
        }
        if self.downgrade_critical_percent < self.downgrade_high_percent {
            return fail(
                "risk.downgrade_critical_percent",
                "must not be below downgrade_high_percent",
            );
        }
        if self.card_expiring_high_days > self.card_expiring_days {
            return fail(
                "risk.card_expiring_high_days",
                "must not exceed card_expiring_days",
            );
        }
        if self.one_off_open_days < 1 {
            return fail("risk.one_off_open_days", "must be at least 1");
        }
        Ok(())
    }

    /// Whether `amount` reaches its currency's high-value threshold.
    pub fn is_high_value(&self, amount: Money) -> bool {
        self.high_value_amounts
            .get(&amount.currency)
            .is_some_and(|threshold| amount.minor >= *threshold)
    }

    /// Severity of a relative MRR (or quantity) drop given in basis points.
    pub(crate) fn downgrade_severity(&self, drop_bps: u32) -> Severity {
        let bps = |percent: f64| (percent * 100.0).round() as u32;
        if drop_bps >= bps(self.downgrade_critical_percent) {
            Severity::Critical
        } else if drop_bps >= bps(self.downgrade_high_percent) {
            Severity::High
        } else if drop_bps >= bps(self.downgrade_medium_percent) {
            Severity::Medium
        } else {
            Severity::Low
        }
    }
}

/// Points a signal of each kind deducts from 100 at Critical severity
/// (before the severity multiplier and decay).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KindWeights {
    /// Default 40: the strongest billing predictor of churn.
    pub payment_failed: f64,
    /// Default 25: comes with a failed payment, adds the "still not fixed".
    pub dunning_in_progress: f64,
    /// Default 15: one click from the customer fixes it.
    pub payment_action_required: f64,
    /// Default 10: a warning about next month.
    pub card_expiring: f64,
    /// Default 30: the next renewal will fail unless the card is replaced.
    pub card_expired: f64,
    /// Default 30: revenue already lost, a signal of shrinking use.
    pub subscription_downgrade: f64,
    /// Default 60: the customer said they are leaving.
    pub cancellation_requested: f64,
    /// Default 80: they left.
    pub subscription_canceled: f64,
    /// Default 50: a chargeback is a customer fighting a charge.
    pub dispute_opened: f64,
    /// Default 50: money written off.
    pub invoice_uncollectible: f64,
}

impl Default for KindWeights {
    fn default() -> Self {
        Self {
            payment_failed: 40.0,
            dunning_in_progress: 25.0,
            payment_action_required: 15.0,
            card_expiring: 10.0,
            card_expired: 30.0,
            subscription_downgrade: 30.0,
            cancellation_requested: 60.0,
            subscription_canceled: 80.0,
            dispute_opened: 50.0,
            invoice_uncollectible: 50.0,
        }
    }
}

impl KindWeights {
    /// The weight of `kind`.
    pub fn get(&self, kind: SignalKind) -> f64 {
        match kind {
            SignalKind::PaymentFailed => self.payment_failed,
            SignalKind::DunningInProgress => self.dunning_in_progress,
            SignalKind::PaymentActionRequired => self.payment_action_required,
            SignalKind::CardExpiring => self.card_expiring,
            SignalKind::CardExpired => self.card_expired,
            SignalKind::SubscriptionDowngrade => self.subscription_downgrade,
            SignalKind::CancellationRequested => self.cancellation_requested,
            SignalKind::SubscriptionCanceled => self.subscription_canceled,
            SignalKind::DisputeOpened => self.dispute_opened,
            SignalKind::InvoiceUncollectible => self.invoice_uncollectible,
        }
    }
}

/// The share of a kind's weight a signal deducts at each severity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SeverityMultipliers {
    /// Default 0.25.
    pub low: f64,
    /// Default 0.5.
    pub medium: f64,
    /// Default 0.75.
    pub high: f64,
    /// Default 1.0.
    pub critical: f64,
}

impl Default for SeverityMultipliers {
    fn default() -> Self {
        Self {
            low: 0.25,
            medium: 0.5,
            high: 0.75,
            critical: 1.0,
        }
    }
}

impl SeverityMultipliers {
    /// The multiplier of `severity`.
    pub fn get(&self, severity: Severity) -> f64 {
        match severity {
            Severity::Low => self.low,
            Severity::Medium => self.medium,
            Severity::High => self.high,
            Severity::Critical => self.critical,
        }
    }
}

/// Lowest scores of the bands; below `at_risk_min` is Critical.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthBands {
    /// Healthy from this score. Default 80.
    pub healthy_min: u8,
    /// Watch from this score. Default 60.
    pub watch_min: u8,
    /// At risk from this score. Default 40.
    pub at_risk_min: u8,
}

impl Default for HealthBands {
    fn default() -> Self {
        Self {
            healthy_min: 80,
            watch_min: 60,
            at_risk_min: 40,
        }
    }
}

/// Tunables of the billing health score. Every field has a default; check a
/// loaded config with [`HealthWeights::validate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthWeights {
    /// Points per kind at Critical severity.
    pub weights: KindWeights,
    /// Share of the weight per severity.
    pub severity: SeverityMultipliers,
    /// Share of its open deduction a signal keeps the moment it resolves,
    /// in `[0, 1]`. Default 0.5: a paid invoice lifts the score at once (the
    /// money came in), while the memory of the failure still weighs until
    /// it fades. 1 keeps the full deduction at resolution; 0 makes resolved
    /// signals count nothing.
    pub resolved_initial_factor: f64,
    /// A resolved signal's deduction halves every this many days. Default 14:
    /// a failure paid last week still says something, one paid last quarter
    /// little.
    pub resolved_half_life_days: f64,
    /// A signal resolved this many days ago no longer counts at all.
    /// Default 90 (with the defaults, under 0.6 % of the open deduction is
    /// left by then).
    pub resolved_cutoff_days: f64,
    /// Kinds whose deduction ends the moment they resolve: warnings about
    /// the future that were heeded leave no mark. Default: `card_expiring`,
    /// `card_expired` (a replaced card is a fix, not a symptom; a payment
    /// that failed on the old card keeps its own fading deduction).
    pub clear_on_resolve: Vec<SignalKind>,
    /// Score bands.
    pub bands: HealthBands,
}

impl Default for HealthWeights {
    fn default() -> Self {
        Self {
            weights: KindWeights::default(),
            severity: SeverityMultipliers::default(),
            resolved_initial_factor: 0.5,
            resolved_half_life_days: 14.0,
            resolved_cutoff_days: 90.0,
            clear_on_resolve: vec![SignalKind::CardExpiring, SignalKind::CardExpired],
            bands: HealthBands::default(),
        }
    }
}

impl HealthWeights {
    /// Checks that weights are finite and in `[0, 100]`, multipliers in
    /// `[0, 1]` and rising with severity, the resolved initial factor in
    /// `[0, 1]`, the half-life positive, the cutoff not below it, and the
    /// bands ordered within `1..=100`.
    pub fn validate(&self) -> Result<(), RiskConfigError> {
        for kind in SignalKind::ALL {
            let weight = self.weights.get(kind);
            if !(0.0..=100.0).contains(&weight) {
                return fail(
                    format!("health.weights.{kind}"),
                    format!("{weight} is not in [0, 100]"),
                );
            }
        }
        let mut previous = 0.0;
        for severity in Severity::ALL {
            let multiplier = self.severity.get(severity);
            if !(0.0..=1.0).contains(&multiplier) {
                return fail(
                    format!("health.severity.{severity}"),
                    format!("{multiplier} is not in [0, 1]"),
                );
            }
            if multiplier < previous {
                return fail(
                    format!("health.severity.{severity}"),
                    "must not be below the multiplier of a lower severity",
                );
            }
            previous = multiplier;
        }
        let initial = self.resolved_initial_factor;
        if !(0.0..=1.0).contains(&initial) {
            return fail(
                "health.resolved_initial_factor",
                format!("{initial} is not in [0, 1]"),
            );
        }
        let half_life = self.resolved_half_life_days;
        if !(half_life.is_finite() && half_life > 0.0) {
            return fail(
                "health.resolved_half_life_days",
                format!("{half_life} is not a positive number of days"),
            );
        }
        let cutoff = self.resolved_cutoff_days;
        if !(cutoff.is_finite() && cutoff >= half_life) {
            return fail(
                "health.resolved_cutoff_days",
                format!("{cutoff} must be a number of days not below resolved_half_life_days"),
            );
        }
        let bands = &self.bands;
        if !(1..=100).contains(&bands.healthy_min) {
            return fail("health.bands.healthy_min", "must be in 1..=100");
        }
        if bands.watch_min > bands.healthy_min {
            return fail("health.bands.watch_min", "must not exceed healthy_min");
        }
        if bands.at_risk_min > bands.watch_min {
            return fail("health.bands.at_risk_min", "must not exceed watch_min");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_deserialize_from_nothing() {
        let risk: RiskConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(risk, RiskConfig::default());
        risk.validate().unwrap();
        let health: HealthWeights = serde_json::from_str("{}").unwrap();
        assert_eq!(health, HealthWeights::default());
        health.validate().unwrap();
    }

    #[test]
    fn documented_defaults() {
        let risk = RiskConfig::default();
        assert_eq!(risk.payment_failed_high_attempts, 2);
        assert_eq!(risk.payment_failed_critical_attempts, 3);
        assert_eq!(risk.delinquent_critical_days, 30);
        assert_eq!(
            (
                risk.downgrade_medium_percent,
                risk.downgrade_high_percent,
                risk.downgrade_critical_percent
            ),
            (10.0, 30.0, 50.0)
        );
        assert_eq!(
            (risk.card_expiring_days, risk.card_expiring_high_days),
            (30, 7)
        );
        assert_eq!(risk.one_off_open_days, 30);
        let json = serde_json::to_value(&risk.high_value_amounts).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"aud":150000,"cad":150000,"chf":100000,"eur":100000,
                               "gbp":100000,"jpy":150000,"usd":100000})
        );
        let health = HealthWeights::default();
        let weights: Vec<f64> = SignalKind::ALL
            .iter()
            .map(|k| health.weights.get(*k))
            .collect();
        assert_eq!(
            weights,
            [40.0, 25.0, 15.0, 10.0, 30.0, 30.0, 60.0, 80.0, 50.0, 50.0]
        );
        let multipliers: Vec<f64> = Severity::ALL
            .iter()
            .map(|s| health.severity.get(*s))
            .collect();
        assert_eq!(multipliers, [0.25, 0.5, 0.75, 1.0]);
        assert_eq!(health.resolved_initial_factor, 0.5);
        assert_eq!(health.resolved_half_life_days, 14.0);
        assert_eq!(health.resolved_cutoff_days, 90.0);
        assert_eq!(
            health.clear_on_resolve,
            [SignalKind::CardExpiring, SignalKind::CardExpired]
        );
        assert_eq!(
            health.bands,
            HealthBands {
                healthy_min: 80,
                watch_min: 60,
                at_risk_min: 40
            }
        );
    }

    #[test]
    fn partial_override_keeps_other_defaults_and_unknown_keys_fail() {
        let risk: RiskConfig = serde_json::from_str(
            r#"{"card_expiring_days":45,"high_value_amounts":{"USD":500000}}"#,
        )
        .unwrap();
        assert_eq!(risk.card_expiring_days, 45);
        assert_eq!(risk.card_expiring_high_days, 7);
        assert_eq!(
            risk.high_value_amounts.len(),
            1,
            "a map replaces the default map"
        );
        assert_eq!(risk.high_value_amounts[&Currency::USD], 500_000);
        assert!(serde_json::from_str::<RiskConfig>(r#"{"card_expiry_days":45}"#).is_err());
        assert!(
            serde_json::from_str::<RiskConfig>(r#"{"high_value_amounts":{"dollars":1}}"#).is_err()
        );

        let health: HealthWeights = serde_json::from_str(
            r#"{"weights":{"payment_failed":50},"bands":{"healthy_min":90},"clear_on_resolve":[]}"#,
        )
        .unwrap();
        assert_eq!(health.weights.payment_failed, 50.0);
        assert_eq!(health.weights.dunning_in_progress, 25.0);
        assert_eq!(health.bands.healthy_min, 90);
        assert_eq!(health.bands.watch_min, 60);
        assert!(health.clear_on_resolve.is_empty());
        assert_eq!(health.resolved_initial_factor, 0.5);
        let old_behaviour: HealthWeights =
            serde_json::from_str(r#"{"resolved_initial_factor":1}"#).unwrap();
        assert_eq!(old_behaviour.resolved_initial_factor, 1.0);
        assert_eq!(old_behaviour.resolved_half_life_days, 14.0);
        assert!(serde_json::from_str::<HealthWeights>(r#"{"weights":{"churn":1}}"#).is_err());
        assert!(serde_json::from_str::<HealthWeights>(r#"{"clear_on_resolve":["card"]}"#).is_err());
        assert!(serde_json::from_str::<HealthWeights>(r#"{"half_life":3}"#).is_err());
    }

    #[test]
    fn risk_validate_names_the_bad_key() {
        type Case = (fn(&mut RiskConfig), &'static str);
        let cases: [Case; 11] = [
            (
                |c| c.payment_failed_high_attempts = 0,
                "risk.payment_failed_high_attempts",
            ),
            (
                |c| c.payment_failed_critical_attempts = 1,
                "risk.payment_failed_critical_attempts",
            ),
            (
                |c| {
                    c.high_value_amounts.insert(Currency::JPY, 0);
                },
                "risk.high_value_amounts.jpy",
            ),
            (
                |c| c.delinquent_critical_days = 0,
                "risk.delinquent_critical_days",
            ),
            (
                |c| c.downgrade_medium_percent = 0.0,
                "risk.downgrade_medium_percent",
            ),
            (
                |c| c.downgrade_high_percent = f64::NAN,
                "risk.downgrade_high_percent",
            ),
            (
                |c| c.downgrade_critical_percent = 100.5,
                "risk.downgrade_critical_percent",
            ),
            (
                |c| c.downgrade_high_percent = 5.0,
                "risk.downgrade_high_percent",
            ),
            (
                |c| c.downgrade_critical_percent = 20.0,
                "risk.downgrade_critical_percent",
            ),
            (
                |c| c.card_expiring_high_days = 31,
                "risk.card_expiring_high_days",
            ),
            (|c| c.one_off_open_days = 0, "risk.one_off_open_days"),
        ];
        for (mutate, key) in cases {
            let mut config = RiskConfig::default();
            mutate(&mut config);
            let err = config.validate().unwrap_err();
            assert_eq!(err.key, key);
            assert!(err.to_string().starts_with(&format!("{key}: ")), "{err}");
        }
        let equal = RiskConfig {
            payment_failed_critical_attempts: 2,
            downgrade_high_percent: 10.0,
            downgrade_critical_percent: 10.0,
            card_expiring_high_days: 30,
            ..RiskConfig::default()
        };
        equal.validate().expect("equal thresholds are allowed");
    }

    #[test]
    fn health_validate_names_the_bad_key() {
        type Case = (fn(&mut HealthWeights), &'static str);
        let cases: [Case; 14] = [
            (
                |c| c.weights.dispute_opened = -1.0,
                "health.weights.dispute_opened",
            ),
            (
                |c| c.weights.card_expired = f64::NAN,
                "health.weights.card_expired",
            ),
            (
                |c| c.weights.payment_failed = 100.5,
                "health.weights.payment_failed",
            ),
            (|c| c.severity.high = 1.5, "health.severity.high"),
            (|c| c.severity.medium = 0.9, "health.severity.high"),
            (|c| c.severity.low = 0.6, "health.severity.medium"),
            (
                |c| c.resolved_initial_factor = -0.1,
                "health.resolved_initial_factor",
            ),
            (
                |c| c.resolved_initial_factor = 1.5,
                "health.resolved_initial_factor",
            ),
            (
                |c| c.resolved_initial_factor = f64::NAN,
                "health.resolved_initial_factor",
            ),
            (
                |c| c.resolved_half_life_days = 0.0,
                "health.resolved_half_life_days",
            ),
            (
                |c| c.resolved_cutoff_days = 7.0,
                "health.resolved_cutoff_days",
            ),
            (|c| c.bands.healthy_min = 101, "health.bands.healthy_min"),
            (|c| c.bands.watch_min = 85, "health.bands.watch_min"),
            (|c| c.bands.at_risk_min = 61, "health.bands.at_risk_min"),
        ];
        for (mutate, key) in cases {
            let mut config = HealthWeights::default();
            mutate(&mut config);
            let err = config.validate().unwrap_err();
            assert_eq!(err.key, key, "{err}");
            assert!(err.to_string().starts_with(&format!("{key}: ")), "{err}");
        }
        let bad = HealthWeights {
            resolved_initial_factor: 1.5,
            ..HealthWeights::default()
        };
        assert_eq!(
            bad.validate().unwrap_err().to_string(),
            "health.resolved_initial_factor: 1.5 is not in [0, 1]"
        );
        for edge in [0.0, 1.0] {
            let config = HealthWeights {
                resolved_initial_factor: edge,
                ..HealthWeights::default()
            };
            config.validate().expect("0 and 1 are allowed");
        }
    }

    #[test]
    fn high_value_is_per_currency_in_minor_units() {
        let config = RiskConfig::default();
        assert!(config.is_high_value(Money::new(100_000, Currency::USD)));
        assert!(!config.is_high_value(Money::new(99_999, Currency::USD)));
        // ¥150,000 is high-value; ¥1,000 (1000 minor units) is not.
        assert!(config.is_high_value(Money::new(150_000, Currency::JPY)));
        assert!(!config.is_high_value(Money::new(1_000, Currency::JPY)));
        // No threshold for KWD: never high-value.
        assert!(!config.is_high_value(Money::new(i64::MAX, Currency::KWD)));
    }

    #[test]
    fn downgrade_severity_thresholds_are_inclusive() {
        let config = RiskConfig::default();
        assert_eq!(config.downgrade_severity(0), Severity::Low);
        assert_eq!(config.downgrade_severity(999), Severity::Low);
        assert_eq!(config.downgrade_severity(1000), Severity::Medium);
        assert_eq!(config.downgrade_severity(2999), Severity::Medium);
        assert_eq!(config.downgrade_severity(3000), Severity::High);
        assert_eq!(config.downgrade_severity(4999), Severity::High);
        assert_eq!(config.downgrade_severity(5000), Severity::Critical);
        assert_eq!(config.downgrade_severity(10000), Severity::Critical);
        let fractional = RiskConfig {
            downgrade_medium_percent: 12.5,
            ..RiskConfig::default()
        };
        assert_eq!(fractional.downgrade_severity(1249), Severity::Low);
        assert_eq!(fractional.downgrade_severity(1250), Severity::Medium);
    }
}
