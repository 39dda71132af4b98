use chrono::{TimeZone, Utc};

use super::super::test_support::*;
use super::*;

use SignalKind::{CardExpired, CardExpiring};

const KEY: &str = "pm:pm_1:2026-12";

fn signals(card: &CardState, today: NaiveDate) -> Vec<SignalChange> {
    card_signals(card, today, &RiskConfig::default()).unwrap()
}

fn card_evidence(draft: &SignalDraft) -> &CardEvidence {
    match &draft.evidence {
        Evidence::Card(evidence) => evidence,
        other => panic!("not card evidence: {other:?}"),
    }
}

fn record(kind: SignalKind, key: &str, resolved: bool) -> SignalRecord {
    SignalRecord {
        id: format!("{kind}/{key}"),
        kind,
        cause_key: CauseKey::from_stored(key),
        severity: Severity::Medium,
        raised_at: Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap(),
        resolved_at: resolved.then(|| Utc.with_ymd_and_hms(2026, 12, 2, 0, 0, 0).unwrap()),
    }
}

#[test]
fn valid_through_is_the_end_of_the_expiry_month() {
    let through = |exp_month, exp_year| {
        CardState {
            exp_month,
            exp_year,
            ..card()
        }
        .valid_through()
        .unwrap()
    };
    assert_eq!(through(12, 2026), day(2026, 12, 31));
    assert_eq!(through(1, 2027), day(2027, 1, 31));
    assert_eq!(through(4, 2026), day(2026, 4, 30));
    assert_eq!(through(2, 2026), day(2026, 2, 28));
    assert_eq!(through(2, 2028), day(2028, 2, 29), "leap year");
    assert_eq!(through(2, 2100), day(2100, 2, 28), "not a leap year");
    assert_eq!(through(2, 2000), day(2000, 2, 29), "leap year every 400");
    assert_eq!(through(12, 9999), day(9999, 12, 31));
}

#[test]
fn invalid_expiries_are_errors() {
    for month in [0, 13, 99] {
        let card = CardState {
            exp_month: month,
            ..card()
        };
        assert_eq!(
            card_signals(&card, day(2026, 1, 1), &RiskConfig::default()),
            Err(CardError::InvalidExpiryMonth {
                payment_method_id: pm("pm_1"),
                month
            })
        );
    }
    for year in [26, 999, 10_000, -2026] {
        let card = CardState {
            exp_year: year,
            ..card()
        };
        let err = card.valid_through().unwrap_err();
        assert_eq!(
            err,
            CardError::InvalidExpiryYear {
                payment_method_id: pm("pm_1"),
                year
            }
        );
        assert!(err
            .to_string()
            .starts_with("payment method pm_1: expiry year"));
    }
    // Invalid even when it would only be resolved: the key would be garbage.
    let not_default = CardState {
        exp_month: 13,
        is_default: false,
        ..card()
    };
    assert!(card_signals(&not_default, day(2026, 1, 1), &RiskConfig::default()).is_err());
}

#[test]
fn far_from_expiry_resolves_both() {
    let changes = signals(&card(), day(2026, 11, 30));
    assert_eq!(raised(&changes), []);
    assert_eq!(
        resolved(&changes),
        [
            (CardExpiring, KEY.to_owned(), ResolveReason::CardNotExpiring),
            (CardExpired, KEY.to_owned(), ResolveReason::CardNotExpiring),
        ]
    );
}

#[test]
fn expiring_from_thirty_days_before_the_end_of_the_month() {
    // 2026-12-01 is 30 days before 2026-12-31.
    let changes = signals(&card(), day(2026, 12, 1));
    assert_eq!(
        raised(&changes),
        [(CardExpiring, KEY.to_owned(), Severity::Medium)]
    );
    assert_eq!(
        resolved(&changes),
        [(CardExpired, KEY.to_owned(), ResolveReason::CardNotExpiring)]
    );
    let draft = draft(&changes, CardExpiring);
    assert_eq!(
        draft.summary,
        "Default visa card ending 4242 expires on 2026-12-31 (in 30 days)"
    );
    assert_eq!(draft.objects, ["pm_1"]);
    let evidence = card_evidence(draft);
    assert_eq!(evidence.valid_through, day(2026, 12, 31));
    assert_eq!(evidence.days_until_expiry, 30);
    assert_eq!((evidence.exp_month, evidence.exp_year), (12, 2026));
    assert_eq!(evidence.last4, "4242");
}

#[test]
fn expiring_becomes_high_in_the_last_week() {
    let severity = |today| draft(&signals(&card(), today), CardExpiring).severity;
    assert_eq!(severity(day(2026, 12, 23)), Severity::Medium, "8 days");
    assert_eq!(severity(day(2026, 12, 24)), Severity::High, "7 days");
    assert_eq!(severity(day(2026, 12, 31)), Severity::High, "last day");
    assert_eq!(
        draft(&signals(&card(), day(2026, 12, 30)), CardExpiring).summary,
        "Default visa card ending 4242 expires on 2026-12-31 (in 1 day)"
    );
    assert_eq!(
        draft(&signals(&card(), day(2026, 12, 31)), CardExpiring).summary,
        "Default visa card ending 4242 expires on 2026-12-31 (today, its last valid day)"
    );
}

#[test]
fn expired_after_the_last_day_across_the_year_boundary() {
    let changes = signals(&card(), day(2027, 1, 1));
    assert_eq!(
        raised(&changes),
        [(CardExpired, KEY.to_owned(), Severity::High)]
    );
    assert_eq!(
        resolved(&changes),
        [(CardExpiring, KEY.to_owned(), ResolveReason::CardExpired)]
    );
    let expired = draft(&changes, CardExpired);
    assert_eq!(
        expired.summary,
        "Default visa card ending 4242 expired on 2026-12-31"
    );
    assert_eq!(card_evidence(expired).days_until_expiry, -1);
    // Long expired: still expired, evidence counts the days.
    let later = signals(&card(), day(2027, 3, 1));
    assert_eq!(
        card_evidence(draft(&later, CardExpired)).days_until_expiry,
        -60
    );
}

#[test]
fn leap_day_expiry() {
    let february = CardState {
        exp_month: 2,
        exp_year: 2028,
        ..card()
    };
    let key = "pm:pm_1:2028-02".to_owned();
    let on_leap_day = signals(&february, day(2028, 2, 29));
    assert_eq!(
        raised(&on_leap_day),
        [(CardExpiring, key.clone(), Severity::High)]
    );
    let next_day = signals(&february, day(2028, 3, 1));
    assert_eq!(
        raised(&next_day),
        [(CardExpired, key.clone(), Severity::High)]
    );
    // 30 days before 29 February 2028 is 30 January.
    assert_eq!(
        raised(&signals(&february, day(2028, 1, 30))),
        [(CardExpiring, key.clone(), Severity::Medium)]
    );
    assert_eq!(raised(&signals(&february, day(2028, 1, 29))), []);
}

#[test]
fn not_default_or_detached_resolves_both() {
    let other = CardState {
        is_default: false,
        ..card()
    };
    assert_eq!(
        resolved(&signals(&other, day(2026, 12, 20))),
        [
            (CardExpiring, KEY.to_owned(), ResolveReason::CardNotDefault),
            (CardExpired, KEY.to_owned(), ResolveReason::CardNotDefault),
        ]
    );
    for detached in [
        CardState {
            detached: true,
            ..card()
        },
        CardState {
            detached: true,
            is_default: false,
            ..card()
        },
    ] {
        let changes = signals(&detached, day(2027, 2, 1));
        assert_eq!(raised(&changes), []);
        assert!(changes
            .iter()
            .all(|c| c.resolve_reason() == Some(ResolveReason::CardDetached)));
        assert_eq!(changes.len(), 2);
    }
}

#[test]
fn windows_are_configurable() {
    let config = RiskConfig {
        card_expiring_days: 60,
        card_expiring_high_days: 14,
        ..RiskConfig::default()
    };
    let severity = |today| {
        card_signals(&card(), today, &config)
            .unwrap()
            .iter()
            .filter_map(SignalChange::as_raise)
            .map(|d| d.severity)
            .next()
    };
    assert_eq!(
        severity(day(2026, 11, 1)),
        Some(Severity::Medium),
        "60 days"
    );
    assert_eq!(severity(day(2026, 10, 31)), None, "61 days");
    assert_eq!(severity(day(2026, 12, 17)), Some(Severity::High), "14 days");
}

#[test]
fn empty_brand_is_left_out_of_the_summary() {
    let unbranded = CardState {
        brand: String::new(),
        ..card()
    };
    assert_eq!(
        draft(&signals(&unbranded, day(2026, 12, 10)), CardExpiring).summary,
        "Default card ending 4242 expires on 2026-12-31 (in 21 days)"
    );
}

#[test]
fn the_daily_scan_replays_idempotently() {
    let today = day(2026, 12, 10);
    assert_eq!(signals(&card(), today), signals(&card(), today));
}

#[test]
fn card_replaced_resolves_the_old_default() {
    let open = [
        record(CardExpiring, "pm:pm_old:2026-12", false),
        record(CardExpired, "pm:pm_older:2025-01", false),
        record(CardExpiring, "pm:pm_gone:2024-01", true),
        record(SignalKind::PaymentFailed, "invoice:in_1", false),
    ];
    let new_default = CardState {
        payment_method_id: pm("pm_new"),
        exp_year: 2030,
        ..card()
    };
    let changes = card_replaced(&open, Some(&new_default));
    assert_eq!(
        resolved(&changes),
        [
            (
                CardExpiring,
                "pm:pm_old:2026-12".to_owned(),
                ResolveReason::CardReplaced
            ),
            (
                CardExpired,
                "pm:pm_older:2025-01".to_owned(),
                ResolveReason::CardReplaced
            ),
        ]
    );
    assert_eq!(raised(&changes), []);
}

#[test]
fn card_replaced_keeps_the_current_defaults_signals() {
    let open = [
        record(CardExpiring, KEY, false),
        record(CardExpired, KEY, false),
    ];
    assert_eq!(card_replaced(&open, Some(&card())), []);
}

#[test]
fn an_expiry_updated_in_place_is_a_replacement() {
    // The account updater gives pm_1 a new expiry: the old key is stale.
    let open = [record(CardExpiring, KEY, false)];
    let updated = CardState {
        exp_year: 2030,
        exp_month: 3,
        ..card()
    };
    assert_eq!(
        resolved(&card_replaced(&open, Some(&updated))),
        [(CardExpiring, KEY.to_owned(), ResolveReason::CardReplaced)]
    );
    // And the new key is far from expiry: nothing raised.
    assert_eq!(raised(&signals(&updated, day(2026, 12, 10))), []);
}

#[test]
fn no_default_card_left_resolves_everything_as_removed() {
    let open = [record(CardExpiring, KEY, false)];
    let expected = [(CardExpiring, KEY.to_owned(), ResolveReason::CardRemoved)];
    assert_eq!(resolved(&card_replaced(&open, None)), expected);
    let detached = CardState {
        detached: true,
        ..card()
    };
    assert_eq!(resolved(&card_replaced(&open, Some(&detached))), expected);
    let not_default = CardState {
        is_default: false,
        ..card()
    };
    assert_eq!(
        resolved(&card_replaced(&open, Some(&not_default))),
        expected
    );
}

#[test]
fn card_replaced_is_sorted_deduplicated_and_order_independent() {
    let a = record(CardExpiring, "pm:pm_b:2026-01", false);
    let b = record(CardExpired, "pm:pm_a:2026-01", false);
    let dup = SignalRecord {
        id: "other".to_owned(),
        ..a.clone()
    };
    let one = card_replaced(&[a.clone(), b.clone(), dup.clone()], None);
    let other = card_replaced(&[dup, b, a], None);
    assert_eq!(one, other);
    assert_eq!(
        resolved(&one),
        [
            (
                CardExpiring,
                "pm:pm_b:2026-01".to_owned(),
                ResolveReason::CardRemoved
            ),
            (
                CardExpired,
                "pm:pm_a:2026-01".to_owned(),
                ResolveReason::CardRemoved
            ),
        ]
    );
}
