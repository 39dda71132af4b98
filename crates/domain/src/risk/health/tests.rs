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

/// The worked example's two High signals (30 + 18.75 open), paid `days` ago.
fn paid(days: f64) -> [SignalRecord; 2] {
    [
        resolved_days_ago(open("a", PaymentFailed, Severity::High), days),
        resolved_days_ago(open("b", DunningInProgress, Severity::High), days),
    ]
}

#[test]
fn worked_example_recovery_fades_with_the_half_life() {
    let unpaid = [
        open("a", PaymentFailed, Severity::High),
        open("b", DunningInProgress, Severity::High),
    ];
    assert_eq!(score(&unpaid).score, 51);

    let just_paid = score(&paid(0.0));
    assert_eq!(
        just_paid.total_deduction, 24.38,
        "just paid: 15 + 9.375, half the open 48.75, rounded per component"
    );
    assert_eq!(just_paid.score, 76, "the score recovers at once");
    assert_eq!(just_paid.band, HealthBand::Watch);
    assert!(just_paid.components.iter().all(|c| c.decay_factor == 0.5));

    let two_weeks = score(&paid(14.0));
    assert_eq!(two_weeks.total_deduction, 12.19, "7.5 + 4.6875 → 4.69");
    assert_eq!(two_weeks.score, 88);
    assert_eq!(two_weeks.band, HealthBand::Healthy);
    assert_eq!(two_weeks.components[0].decay_factor, 0.25);

    let four_weeks = score(&paid(28.0));
    assert_eq!(four_weeks.total_deduction, 6.09, "3.75 + 2.34375 → 2.34");
    assert_eq!(four_weeks.score, 94);
    assert_eq!(four_weeks.components[0].decay_factor, 0.125);

    let a_quarter = score(&paid(89.9));
    assert_eq!(
        a_quarter.total_deduction, 0.29,
        "a quarter later: about 0.6 % of the open deduction is left"
    );
    assert_eq!(a_quarter.score, 100);
    assert_eq!(a_quarter.components.len(), 2, "still listed");

    let gone = score(&paid(90.0));
    assert_eq!(gone.score, 100);
    assert!(gone.components.is_empty(), "past the cutoff: not listed");
}

#[test]
fn the_default_resolved_initial_factor_is_a_half() {
    assert_eq!(HealthWeights::default().resolved_initial_factor, 0.5);
    // Every resolved deduction is half of what it was open, at any age.
    for days in [0.0, 3.0, 14.0, 45.0] {
        let keep_all = HealthWeights {
            resolved_initial_factor: 1.0,
            ..HealthWeights::default()
        };
        let full = health_score(&paid(days), now(), &keep_all);
        let half = score(&paid(days));
        for (f, h) in full.components.iter().zip(&half.components) {
            assert_eq!(h.decay_factor, f.decay_factor / 2.0, "{days} days");
        }
    }
}

#[test]
fn a_resolved_initial_factor_of_one_keeps_the_old_curve() {
    let keep_all = HealthWeights {
        resolved_initial_factor: 1.0,
        ..HealthWeights::default()
    };
    let at = |days| health_score(&paid(days), now(), &keep_all);
    assert_eq!(at(0.0).score, 51, "just paid: full deduction");
    assert_eq!(at(0.0).components[0].decay_factor, 1.0);
    assert_eq!(at(14.0).total_deduction, 24.38);
    assert_eq!(at(14.0).score, 76);
    assert_eq!(at(28.0).score, 88);
    assert_eq!(at(89.9).score, 99);
    assert!(at(90.0).components.is_empty());
}

#[test]
fn a_resolved_initial_factor_of_zero_counts_resolved_signals_for_nothing() {
    let forget = HealthWeights {
        resolved_initial_factor: 0.0,
        ..HealthWeights::default()
    };
    forget.validate().unwrap();
    for days in [0.0, 1.0, 14.0, 89.9] {
        let health = health_score(&paid(days), now(), &forget);
        assert_eq!(health.score, 100, "{days} days");
        assert_eq!(health.total_deduction, 0.0);
        assert_eq!(health.components.len(), 2, "listed, with no deduction");
        assert!(health
            .components
            .iter()
            .all(|c| !c.open && c.decay_factor == 0.0 && c.deduction == 0.0));
    }
    // Open signals still count fully.
    let mixed = [
        open("c", PaymentFailed, Severity::Medium),
        resolved_days_ago(open("d", DunningInProgress, Severity::High), 0.0),
    ];
    let health = health_score(&mixed, now(), &forget);
    assert_eq!(health.total_deduction, 20.0);
    assert_eq!(health.score, 80);
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
    // "old": 40 × 1.0 × (0.5 initial × 0.5 after one half-life) = 10.
    assert_eq!(parts, [("big", 45.0), ("old", 10.0), ("small", 5.0)]);
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
    assert_eq!(old.decay_factor, 0.25);
    assert_eq!(health.total_deduction, 60.0);
    assert_eq!(health.score, 40);
    assert_eq!(health.band, HealthBand::AtRisk);
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

/// Clock skew: the resolution is stamped after `now`. The record says the
/// signal is resolved, so it counts as resolved just now (initial factor, no
/// fading yet) rather than as open: the recovery shows on the score computed
/// right after the payment, whichever replica's clock is ahead.
#[test]
fn a_resolution_in_the_future_counts_as_just_resolved() {
    let skewed = SignalRecord {
        resolved_at: Some(now() + TimeDelta::minutes(5)),
        ..open("a", PaymentFailed, Severity::High)
    };
    let health = score(std::slice::from_ref(&skewed));
    assert!(!health.components[0].open);
    assert_eq!(health.components[0].decay_factor, 0.5);
    assert_eq!(health.components[0].deduction, 15.0);
    assert_eq!(health.score, 85);
    let just_now = resolved_days_ago(open("a", PaymentFailed, Severity::High), 0.0);
    assert_eq!(
        health.components[0].decay_factor,
        score(&[just_now]).components[0].decay_factor
    );
    // Open, it would deduct 30 (score 70). And it does not fade before
    // `now` reaches the stamp.
    assert_eq!(score(&[open("a", PaymentFailed, Severity::High)]).score, 70);
    let later = health_score(
        std::slice::from_ref(&skewed),
        now() + TimeDelta::minutes(5),
        &HealthWeights::default(),
    );
    assert_eq!(later.components[0].decay_factor, 0.5);
    // With the old curve (factor 1) it counts fully, as before.
    let keep_all = HealthWeights {
        resolved_initial_factor: 1.0,
        ..HealthWeights::default()
    };
    let old = health_score(&[skewed], now(), &keep_all);
    assert_eq!(old.components[0].decay_factor, 1.0);
    assert_eq!(old.score, 70);
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
