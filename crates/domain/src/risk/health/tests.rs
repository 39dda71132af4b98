use chrono::TimeDelta;

use super::super::test_support::*;
use super::*;
use crate::risk::{HealthBands, KindWeights, SeverityMultipliers};

use SignalKind::{
    CancellationRequested, CardExpired, CardExpiring, DunningInProgress, PaymentFailed,
    SubscriptionCanceled,
};

fn now() -> DateTime<Utc> {
    at(2026, 3, 1, 12)
}

fn open(id: &str, kind: SignalKind, severity: Severity) -> SignalRecord {
    SignalRecord {
        id: id.to_owned(),
        kind,
        cause_key: CauseKey::from_stored(format!("invoice:{id}")),
        severity,
        raised_at: now() - TimeDelta::days(3),
        resolved_at: None,
    }
}

fn resolved_days_ago(record: SignalRecord, days: f64) -> SignalRecord {
    SignalRecord {
        resolved_at: Some(now() - TimeDelta::seconds((days * 86_400.0) as i64)),
        ..record
    }
}

fn score(signals: &[SignalRecord]) -> HealthScore {
    health_score(signals, now(), &HealthWeights::default())
}

#[test]
fn no_signals_is_a_perfect_score() {
    let health = score(&[]);
    assert_eq!(health.score, 100);
    assert_eq!(health.band, HealthBand::Healthy);
    assert_eq!(health.total_deduction, 0.0);
    assert!(health.components.is_empty());
}

#[test]
fn worked_example_failures_escalate_through_the_bands() {
    // First failure: payment failed and dunning, both Medium.
    let first = [
        open("a", PaymentFailed, Severity::Medium),
        open("b", DunningInProgress, Severity::Medium),
    ];
    let health = score(&first);
    assert_eq!(health.total_deduction, 32.5);
    assert_eq!(health.score, 68, "67.5 rounds half up");
    assert_eq!(health.band, HealthBand::Watch);

    // Second failure: both High. At risk "within minutes of the second failure".
    let second = [
        open("a", PaymentFailed, Severity::High),
        open("b", DunningInProgress, Severity::High),
    ];
    let health = score(&second);
    assert_eq!(health.total_deduction, 48.75);
    assert_eq!(health.score, 51);
    assert_eq!(health.band, HealthBand::AtRisk);

    // Third failure: both Critical.
    let third = [
        open("a", PaymentFailed, Severity::Critical),
        open("b", DunningInProgress, Severity::Critical),
    ];
    let health = score(&third);
    assert_eq!(health.score, 35);
    assert_eq!(health.band, HealthBand::Critical);
}

#[test]
fn worked_example_recovery_fades_with_the_half_life() {
    let paid = |days| {
        [
            resolved_days_ago(open("a", PaymentFailed, Severity::High), days),
            resolved_days_ago(open("b", DunningInProgress, Severity::High), days),
        ]
    };
    assert_eq!(score(&paid(0.0)).score, 51, "just paid: full deduction");
    let two_weeks = score(&paid(14.0));
    assert_eq!(
        two_weeks.total_deduction, 24.38,
        "15 + 9.375 halved, rounded per component"
    );
    assert_eq!(two_weeks.score, 76);
    assert_eq!(two_weeks.band, HealthBand::Watch);
    assert_eq!(two_weeks.components[0].decay_factor, 0.5);
    let four_weeks = score(&paid(28.0));
    assert_eq!(four_weeks.score, 88);
    assert_eq!(four_weeks.band, HealthBand::Healthy);
    assert_eq!(
        score(&paid(89.9)).score,
        99,
        "a quarter later: about 1 % of it is left"
    );
    let gone = score(&paid(90.0));
    assert_eq!(gone.score, 100);
    assert!(gone.components.is_empty(), "past the cutoff: not listed");
}

#[test]
fn components_explain_the_score_largest_first() {
    let signals = [
        open("small", CardExpiring, Severity::Medium),
        open("big", CancellationRequested, Severity::High),
        resolved_days_ago(open("old", PaymentFailed, Severity::Critical), 14.0),
    ];
    let health = score(&signals);
    let parts: Vec<_> = health
        .components
        .iter()
        .map(|c| (c.signal_id.as_str(), c.deduction))
        .collect();
    assert_eq!(parts, [("big", 45.0), ("old", 20.0), ("small", 5.0)]);
    let big = &health.components[0];
    assert_eq!(big.kind, CancellationRequested);
    assert_eq!(big.weight, 60.0);
    assert_eq!(big.severity_multiplier, 0.75);
    assert_eq!(big.decay_factor, 1.0);
    assert!(big.open);
    assert_eq!(big.cause_key.as_str(), "invoice:big");
    let old = &health.components[1];
    assert!(!old.open);
    assert_eq!(old.resolved_at, Some(now() - TimeDelta::days(14)));
    assert_eq!(health.total_deduction, 70.0);
    assert_eq!(health.score, 30);
    assert_eq!(
        health.components.iter().map(|c| c.deduction).sum::<f64>(),
        health.total_deduction
    );
}

#[test]
fn score_is_clamped_at_zero() {
    let signals = [
        open("a", SubscriptionCanceled, Severity::Critical),
        open("b", PaymentFailed, Severity::Critical),
        open("c", CancellationRequested, Severity::Critical),
    ];
    let health = score(&signals);
    assert_eq!(health.total_deduction, 180.0);
    assert_eq!(health.score, 0);
    assert_eq!(health.band, HealthBand::Critical);
}

#[test]
fn card_signals_leave_no_trace_once_resolved() {
    let signals = [
        resolved_days_ago(open("a", CardExpiring, Severity::High), 0.0),
        resolved_days_ago(open("b", CardExpired, Severity::High), 1.0),
    ];
    assert_eq!(score(&signals).score, 100);
    let keep_traces = HealthWeights {
        clear_on_resolve: Vec::new(),
        ..HealthWeights::default()
    };
    let health = health_score(&signals, now(), &keep_traces);
    assert_eq!(health.components.len(), 2);
    assert!(health.score < 100);
    // Open card signals do count.
    assert_eq!(score(&[open("c", CardExpired, Severity::High)]).score, 78);
}

#[test]
fn duplicate_records_count_once() {
    let record = open("a", PaymentFailed, Severity::High);
    let twice = score(&[record.clone(), record.clone()]);
    assert_eq!(twice, score(&[record]));
    assert_eq!(twice.components.len(), 1);
}

#[test]
fn a_resolution_in_the_future_counts_fully() {
    let skewed = SignalRecord {
        resolved_at: Some(now() + TimeDelta::minutes(5)),
        ..open("a", PaymentFailed, Severity::High)
    };
    let health = score(&[skewed]);
    assert_eq!(health.components[0].decay_factor, 1.0);
    assert_eq!(health.score, 70);
}

#[test]
fn weights_and_bands_are_configurable() {
    let weights = HealthWeights {
        weights: KindWeights {
            payment_failed: 100.0,
            ..KindWeights::default()
        },
        bands: HealthBands {
            healthy_min: 95,
            watch_min: 90,
            at_risk_min: 10,
        },
        ..HealthWeights::default()
    };
    let health = health_score(&[open("a", PaymentFailed, Severity::Low)], now(), &weights);
    assert_eq!(health.score, 75);
    assert_eq!(health.band, HealthBand::AtRisk);
    let zero = HealthWeights {
        severity: SeverityMultipliers {
            low: 0.0,
            ..SeverityMultipliers::default()
        },
        ..HealthWeights::default()
    };
    let health = health_score(&[open("a", PaymentFailed, Severity::Low)], now(), &zero);
    assert_eq!(health.score, 100);
    assert_eq!(
        health.components.len(),
        1,
        "still listed, with no deduction"
    );
}

#[test]
fn band_boundaries_are_inclusive() {
    // PaymentFailed Critical = 40 points; vary the weight to hit exact scores.
    let band_at = |points: f64| {
        let weights = HealthWeights {
            weights: KindWeights {
                payment_failed: points,
                ..KindWeights::default()
            },
            ..HealthWeights::default()
        };
        health_score(
            &[open("a", PaymentFailed, Severity::Critical)],
            now(),
            &weights,
        )
        .band
    };
    assert_eq!(band_at(20.0), HealthBand::Healthy);
    assert_eq!(band_at(20.6), HealthBand::Watch);
    assert_eq!(band_at(40.0), HealthBand::Watch);
    assert_eq!(band_at(41.0), HealthBand::AtRisk);
    assert_eq!(band_at(60.0), HealthBand::AtRisk);
    assert_eq!(band_at(61.0), HealthBand::Critical);
}

#[test]
fn bands_have_stable_names() {
    let names: Vec<_> = [
        HealthBand::Healthy,
        HealthBand::Watch,
        HealthBand::AtRisk,
        HealthBand::Critical,
    ]
    .iter()
    .map(|b| (b.as_str(), serde_json::to_string(b).unwrap()))
    .collect();
    assert_eq!(
        names,
        [
            ("healthy", "\"healthy\"".to_owned()),
            ("watch", "\"watch\"".to_owned()),
            ("at_risk", "\"at_risk\"".to_owned()),
            ("critical", "\"critical\"".to_owned()),
        ]
    );
}

#[test]
fn score_serialises_with_its_components() {
    let health = score(&[open("a", PaymentFailed, Severity::Medium)]);
    let json = serde_json::to_value(&health).unwrap();
    assert_eq!(json["score"], 80);
    assert_eq!(json["band"], "healthy");
    assert_eq!(json["components"][0]["kind"], "payment_failed");
    assert_eq!(json["components"][0]["deduction"], 20.0);
    assert_eq!(json["components"][0]["cause_key"], "invoice:a");
}
