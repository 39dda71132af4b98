use chrono::TimeDelta;

use super::super::test_support::*;
use super::*;

use SignalKind::{
    CancellationRequested, DunningInProgress, SubscriptionCanceled, SubscriptionDowngrade,
};
use SubscriptionStatus::{
    Active, Canceled, Incomplete, IncompleteExpired, PastDue, Paused, Trialing, Unpaid,
};

const KEY: &str = "subscription:sub_1";
const DOWNGRADE_KEY: &str = "subscription:sub_1:2026-01-05T10:00:00Z";

fn signals(change: &SubscriptionChange) -> Vec<SignalChange> {
    subscription_signals(change, &RiskConfig::default())
}

fn sub_evidence(draft: &SignalDraft) -> &SubscriptionEvidence {
    match &draft.evidence {
        Evidence::Subscription(evidence) => evidence,
        other => panic!("not subscription evidence: {other:?}"),
    }
}

fn downgraded(mrr_after: i64) -> SubscriptionChange {
    SubscriptionChange {
        mrr_after,
        movement: MovementKind::Contraction,
        ..change()
    }
}

fn downgrade_severity(change: &SubscriptionChange) -> Option<Severity> {
    signals(change)
        .iter()
        .filter_map(SignalChange::as_raise)
        .find(|d| d.kind == SubscriptionDowngrade)
        .map(|d| d.severity)
}

#[test]
fn movements_parse_from_their_names() {
    for kind in [
        MovementKind::New,
        MovementKind::Expansion,
        MovementKind::Contraction,
        MovementKind::Churn,
        MovementKind::Reactivation,
        MovementKind::Unchanged,
    ] {
        assert_eq!(parse_movement(kind.as_str()), Ok(kind));
    }
    for bad in ["", "Churn", "downgrade", "contracted"] {
        assert_eq!(parse_movement(bad), Err(UnknownMovement(bad.to_owned())));
    }
}

#[test]
fn an_unchanged_active_subscription_only_resolves() {
    let changes = signals(&change());
    assert_eq!(raised(&changes), []);
    assert_eq!(
        resolved(&changes),
        [
            (DunningInProgress, KEY.to_owned(), ResolveReason::Recovered),
            (
                CancellationRequested,
                KEY.to_owned(),
                ResolveReason::Withdrawn
            ),
        ]
    );
}

#[test]
fn downgrade_severity_follows_the_relative_mrr_drop() {
    // 1,000.00 USD before.
    assert_eq!(downgrade_severity(&downgraded(95_000)), Some(Severity::Low));
    assert_eq!(downgrade_severity(&downgraded(90_001)), Some(Severity::Low));
    assert_eq!(
        downgrade_severity(&downgraded(90_000)),
        Some(Severity::Medium)
    );
    assert_eq!(
        downgrade_severity(&downgraded(70_001)),
        Some(Severity::Medium)
    );
    assert_eq!(
        downgrade_severity(&downgraded(70_000)),
        Some(Severity::High)
    );
    assert_eq!(
        downgrade_severity(&downgraded(50_001)),
        Some(Severity::High)
    );
    assert_eq!(
        downgrade_severity(&downgraded(50_000)),
        Some(Severity::Critical)
    );
    assert_eq!(downgrade_severity(&downgraded(1)), Some(Severity::Critical));
    // To a free plan while staying active: a 100 % drop.
    assert_eq!(downgrade_severity(&downgraded(0)), Some(Severity::Critical));
}

#[test]
fn downgrade_raises_with_its_own_key_delta_and_percentage() {
    let change = SubscriptionChange {
        quantity_after: Some(6),
        plan_after: Some("price_team".to_owned()),
        ..downgraded(60_000)
    };
    let changes = signals(&change);
    assert_eq!(
        raised(&changes),
        [(
            SubscriptionDowngrade,
            DOWNGRADE_KEY.to_owned(),
            Severity::High
        )]
    );
    let draft = draft(&changes, SubscriptionDowngrade);
    assert_eq!(
        draft.summary,
        "Subscription sub_1 downgraded: MRR 1,000.00 USD → 600.00 USD (−40.0%), \
         quantity 10 → 6, plan price_pro → price_team"
    );
    assert_eq!(draft.objects, ["sub_1"]);
    let evidence = sub_evidence(draft);
    assert_eq!(evidence.mrr_delta, Money::new(-40_000, Currency::USD));
    assert_eq!(evidence.mrr_drop_bps, Some(4000));
    assert_eq!(evidence.mrr_before, Money::new(100_000, Currency::USD));
    assert_eq!(evidence.mrr_after, Money::new(60_000, Currency::USD));
    assert_eq!(evidence.movement, MovementKind::Contraction);
    assert_eq!(evidence.occurred_at, at(2026, 1, 5, 10));
}

#[test]
fn percentage_in_the_summary_is_rounded_down_to_a_tenth() {
    let changes = signals(&SubscriptionChange {
        mrr_before: 30_000,
        ..downgraded(20_000)
    });
    assert!(draft(&changes, SubscriptionDowngrade)
        .summary
        .contains("(−33.3%)"));
    assert_eq!(
        sub_evidence(draft(&changes, SubscriptionDowngrade)).mrr_drop_bps,
        Some(3333)
    );
}

#[test]
fn each_downgrade_is_its_own_cause_and_a_replay_is_the_same_cause() {
    let first = signals(&downgraded(80_000));
    let replay = signals(&downgraded(80_000));
    assert_eq!(first, replay);
    let second = signals(&SubscriptionChange {
        mrr_before: 80_000,
        mrr_after: 60_000,
        occurred_at: at(2026, 3, 1, 9),
        ..downgraded(60_000)
    });
    assert_ne!(
        draft(&first, SubscriptionDowngrade).cause_key,
        draft(&second, SubscriptionDowngrade).cause_key
    );
    assert_eq!(
        draft(&second, SubscriptionDowngrade).cause_key.as_str(),
        "subscription:sub_1:2026-03-01T09:00:00Z"
    );
}

#[test]
fn quantity_only_downgrades() {
    // Flat-fee plan: seats down, MRR unchanged.
    let seats = SubscriptionChange {
        quantity_after: Some(2),
        ..change()
    };
    assert_eq!(downgrade_severity(&seats), Some(Severity::Low));
    assert_eq!(
        draft(&signals(&seats), SubscriptionDowngrade).summary,
        "Subscription sub_1 downgraded: quantity 10 → 2"
    );
    // A trial (MRR 0): severity by the relative quantity drop.
    let trial = |after| SubscriptionChange {
        status_before: Some(Trialing),
        status_after: Trialing,
        mrr_before: 0,
        mrr_after: 0,
        quantity_after: Some(after),
        ..change()
    };
    assert_eq!(downgrade_severity(&trial(9)), Some(Severity::Medium));
    assert_eq!(downgrade_severity(&trial(5)), Some(Severity::Critical));
    assert_eq!(downgrade_severity(&trial(10)), None);
    // Quantity unknown on either side: no quantity rule.
    let unknown = SubscriptionChange {
        quantity_before: None,
        quantity_after: Some(1),
        ..change()
    };
    assert_eq!(downgrade_severity(&unknown), None);
}

#[test]
fn not_a_downgrade() {
    let cases = [
        (
            "expansion",
            SubscriptionChange {
                mrr_after: 120_000,
                quantity_after: Some(12),
                ..change()
            },
        ),
        (
            "new subscription",
            SubscriptionChange {
                status_before: None,
                mrr_before: 0,
                quantity_before: None,
                ..change()
            },
        ),
        (
            "ended",
            SubscriptionChange {
                status_after: Canceled,
                mrr_after: 0,
                ..change()
            },
        ),
        (
            "paused",
            SubscriptionChange {
                status_after: Paused,
                mrr_after: 0,
                ..change()
            },
        ),
        (
            "unpaid",
            SubscriptionChange {
                status_after: Unpaid,
                mrr_after: 0,
                ..change()
            },
        ),
        (
            "from incomplete",
            SubscriptionChange {
                status_before: Some(Incomplete),
                mrr_before: 100_000,
                mrr_after: 50_000,
                ..change()
            },
        ),
        (
            "quantity up, MRR same",
            SubscriptionChange {
                quantity_after: Some(11),
                ..change()
            },
        ),
        (
            "cancellation requested, MRR stops at request",
            SubscriptionChange {
                cancel_at_period_end: true,
                mrr_after: 0,
                movement: MovementKind::Churn,
                ..change()
            },
        ),
    ];
    for (name, change) in cases {
        assert_eq!(downgrade_severity(&change), None, "{name}");
    }
}

#[test]
fn downgrade_while_past_due_and_while_cancellation_counts_mrr_to_period_end() {
    let past_due = SubscriptionChange {
        status_before: Some(PastDue),
        status_after: PastDue,
        ..downgraded(40_000)
    };
    assert_eq!(downgrade_severity(&past_due), Some(Severity::Critical));
    // Under the at-period-end MRR policy a requested cancellation keeps MRR:
    // a real drop alongside it is still a downgrade.
    let both = SubscriptionChange {
        cancel_at_period_end: true,
        ..downgraded(80_000)
    };
    assert_eq!(downgrade_severity(&both), Some(Severity::Medium));
}

#[test]
fn zero_decimal_mrr_formats_without_decimals() {
    let yen = SubscriptionChange {
        currency: Currency::JPY,
        mrr_before: 120_000,
        mrr_after: 30_000,
        ..change()
    };
    let changes = signals(&yen);
    let draft = draft(&changes, SubscriptionDowngrade);
    assert_eq!(draft.severity, Severity::Critical);
    assert_eq!(
        draft.summary,
        "Subscription sub_1 downgraded: MRR 120,000 JPY → 30,000 JPY (−75.0%)"
    );
    assert_eq!(
        sub_evidence(draft).mrr_delta,
        Money::new(-90_000, Currency::JPY)
    );
}

#[test]
fn cancellation_requested_is_high_with_period_end_and_mrr_at_stake() {
    // Stripe's default MRR policy: MRR already 0 after the request.
    let request = SubscriptionChange {
        cancel_at_period_end: true,
        mrr_after: 0,
        movement: MovementKind::Churn,
        ..change()
    };
    let changes = signals(&request);
    assert_eq!(
        raised(&changes),
        [(CancellationRequested, KEY.to_owned(), Severity::High)]
    );
    let draft = draft(&changes, CancellationRequested);
    assert_eq!(
        draft.summary,
        "Cancellation requested for sub_1: ends 2026-02-01 (MRR at stake 1,000.00 USD)"
    );
    let evidence = sub_evidence(draft);
    assert_eq!(evidence.mrr_at_stake, Money::new(100_000, Currency::USD));
    assert_eq!(evidence.current_period_end, Some(at(2026, 2, 1, 0)));
    assert!(evidence.cancel_at_period_end);
    assert!(resolved(&changes).contains(&(
        DunningInProgress,
        KEY.to_owned(),
        ResolveReason::Recovered
    )));
}

#[test]
fn cancellation_requested_without_period_end() {
    let request = SubscriptionChange {
        cancel_at_period_end: true,
        current_period_end: None,
        ..change()
    };
    assert_eq!(
        draft(&signals(&request), CancellationRequested).summary,
        "Cancellation requested for sub_1: ends at period end (MRR at stake 1,000.00 USD)"
    );
}

#[test]
fn withdrawing_a_cancellation_resolves_it() {
    let withdrawn = SubscriptionChange {
        mrr_before: 0,
        movement: MovementKind::Reactivation,
        ..change()
    };
    let changes = signals(&withdrawn);
    assert_eq!(
        raised(&changes),
        [],
        "a withdrawal is not a downgrade or anything else"
    );
    assert!(resolved(&changes).contains(&(
        CancellationRequested,
        KEY.to_owned(),
        ResolveReason::Withdrawn
    )));
}

#[test]
fn cancellation_resolves_the_request_and_dunning_and_raises_churn() {
    let canceled = SubscriptionChange {
        status_after: Canceled,
        mrr_after: 0,
        movement: MovementKind::Churn,
        canceled_at: Some(at(2026, 1, 5, 10)),
        ..change()
    };
    let changes = signals(&canceled);
    assert_eq!(
        raised(&changes),
        [(SubscriptionCanceled, KEY.to_owned(), Severity::Critical)]
    );
    assert_eq!(
        resolved(&changes),
        [
            (
                DunningInProgress,
                KEY.to_owned(),
                ResolveReason::SubscriptionCanceled
            ),
            (
                CancellationRequested,
                KEY.to_owned(),
                ResolveReason::SubscriptionCanceled
            ),
        ]
    );
    assert_eq!(
        draft(&changes, SubscriptionCanceled).summary,
        "Subscription sub_1 canceled (was active, MRR 1,000.00 USD)"
    );
    assert_eq!(
        sub_evidence(draft(&changes, SubscriptionCanceled)).canceled_at,
        Some(at(2026, 1, 5, 10))
    );
}

#[test]
fn cancellation_with_a_pending_request_still_set_ends_the_request() {
    let canceled = SubscriptionChange {
        status_after: Canceled,
        cancel_at_period_end: true,
        mrr_before: 0,
        mrr_after: 0,
        ..change()
    };
    let changes = signals(&canceled);
    assert!(raised(&changes)
        .iter()
        .all(|r| r.0 != CancellationRequested));
    // MRR before was already 0 (stopped at request), yet it was active: Critical.
    assert_eq!(
        draft(&changes, SubscriptionCanceled).severity,
        Severity::Critical
    );
}

#[test]
fn canceled_severity_by_what_was_lost() {
    let severity = |before: Option<SubscriptionStatus>, status_after, mrr_before| {
        signals(&SubscriptionChange {
            status_before: before,
            status_after,
            mrr_before,
            mrr_after: 0,
            canceled_at: Some(at(2026, 1, 5, 10)),
            ..change()
        })
        .iter()
        .filter_map(SignalChange::as_raise)
        .find(|d| d.kind == SubscriptionCanceled)
        .map(|d| d.severity)
    };
    assert_eq!(
        severity(Some(Active), Canceled, 100_000),
        Some(Severity::Critical)
    );
    assert_eq!(
        severity(Some(Active), Canceled, 0),
        Some(Severity::Critical)
    );
    assert_eq!(
        severity(Some(PastDue), Canceled, 0),
        Some(Severity::Critical)
    );
    assert_eq!(
        severity(Some(Unpaid), Canceled, 0),
        Some(Severity::Critical)
    );
    assert_eq!(severity(Some(Paused), Canceled, 0), Some(Severity::High));
    assert_eq!(
        severity(Some(Trialing), Canceled, 0),
        Some(Severity::Medium)
    );
    assert_eq!(
        severity(Some(Trialing), Canceled, 5_000),
        Some(Severity::Critical)
    );
    assert_eq!(
        severity(Some(Incomplete), IncompleteExpired, 0),
        Some(Severity::Low)
    );
    // Later updates of an ended subscription raise nothing again.
    assert_eq!(severity(Some(Canceled), Canceled, 0), None);
    assert_eq!(
        severity(Some(IncompleteExpired), IncompleteExpired, 0),
        None
    );
}

#[test]
fn a_cancellation_first_seen_is_raised_only_when_recent() {
    let first_seen = |canceled_at: Option<DateTime<Utc>>| SubscriptionChange {
        status_before: None,
        status_after: Canceled,
        mrr_before: 0,
        mrr_after: 0,
        canceled_at,
        ..change()
    };
    let occurred = at(2026, 1, 5, 10);
    let recent = signals(&first_seen(Some(occurred - TimeDelta::days(29))));
    assert_eq!(
        raised(&recent),
        [(SubscriptionCanceled, KEY.to_owned(), Severity::High)]
    );
    assert_eq!(
        draft(&recent, SubscriptionCanceled).summary,
        "Subscription sub_1 canceled (MRR 0.00 USD)"
    );
    assert_eq!(
        raised(&signals(&first_seen(Some(occurred - TimeDelta::days(30))))),
        []
    );
    assert_eq!(raised(&signals(&first_seen(Some(at(2023, 6, 1, 0))))), []);
    assert_eq!(raised(&signals(&first_seen(None))), []);
}

#[test]
fn past_due_and_unpaid_are_dunning_by_subscription() {
    let past_due = signals(&SubscriptionChange {
        status_after: PastDue,
        ..change()
    });
    assert_eq!(
        raised(&past_due),
        [(DunningInProgress, KEY.to_owned(), Severity::High)]
    );
    let draft_past_due = draft(&past_due, DunningInProgress);
    assert_eq!(
        sub_evidence(draft_past_due).dunning_stage,
        Some(DunningStage::PastDue)
    );
    assert_eq!(
        draft_past_due.summary,
        "Subscription sub_1 is past due (MRR 1,000.00 USD)"
    );

    let unpaid = signals(&SubscriptionChange {
        status_before: Some(PastDue),
        status_after: Unpaid,
        mrr_after: 0,
        ..change()
    });
    assert_eq!(
        raised(&unpaid),
        [(DunningInProgress, KEY.to_owned(), Severity::Critical)]
    );
    let draft_unpaid = draft(&unpaid, DunningInProgress);
    assert_eq!(
        sub_evidence(draft_unpaid).dunning_stage,
        Some(DunningStage::Unpaid)
    );
    assert_eq!(
        draft_unpaid.summary,
        "Subscription sub_1 is unpaid: retries exhausted (MRR 1,000.00 USD)"
    );
    assert_eq!(
        serde_json::to_value(&draft_unpaid.evidence).unwrap()["dunning_stage"],
        "unpaid"
    );
}

#[test]
fn dunning_by_subscription_ends_on_recovery_pause_or_cancellation() {
    let reason = |status_after| {
        resolved(&signals(&SubscriptionChange {
            status_before: Some(PastDue),
            status_after,
            ..change()
        }))
        .into_iter()
        .find(|r| r.0 == DunningInProgress)
        .map(|r| r.2)
    };
    assert_eq!(reason(Active), Some(ResolveReason::Recovered));
    assert_eq!(reason(Trialing), Some(ResolveReason::Recovered));
    assert_eq!(reason(Paused), Some(ResolveReason::Paused));
    assert_eq!(reason(Canceled), Some(ResolveReason::SubscriptionCanceled));
    assert_eq!(
        reason(IncompleteExpired),
        Some(ResolveReason::SubscriptionCanceled)
    );
    assert_eq!(
        reason(Incomplete),
        None,
        "incomplete is first payment, not dunning"
    );
}

#[test]
fn negative_mrr_counts_as_zero() {
    let odd = SubscriptionChange {
        mrr_before: -500,
        mrr_after: -900,
        ..change()
    };
    let changes = signals(&odd);
    assert_eq!(downgrade_severity(&odd), None);
    assert_eq!(raised(&changes), []);
    let canceled = signals(&SubscriptionChange {
        status_after: Canceled,
        mrr_before: -1,
        mrr_after: 0,
        ..change()
    });
    assert_eq!(
        sub_evidence(draft(&canceled, SubscriptionCanceled)).mrr_at_stake,
        Money::zero(Currency::USD)
    );
}

#[test]
fn extreme_mrr_does_not_overflow() {
    let huge = SubscriptionChange {
        mrr_before: i64::MAX,
        mrr_after: 0,
        ..change()
    };
    let changes = signals(&huge);
    let evidence = sub_evidence(draft(&changes, SubscriptionDowngrade));
    assert_eq!(evidence.mrr_drop_bps, Some(10_000));
    assert_eq!(evidence.mrr_delta.minor, -i64::MAX);
}

#[test]
fn drop_thresholds_are_configurable() {
    let config = RiskConfig {
        downgrade_medium_percent: 5.0,
        downgrade_high_percent: 15.0,
        downgrade_critical_percent: 25.0,
        ..RiskConfig::default()
    };
    let severity = |mrr_after| {
        subscription_signals(&downgraded(mrr_after), &config)
            .iter()
            .filter_map(SignalChange::as_raise)
            .find(|d| d.kind == SubscriptionDowngrade)
            .map(|d| d.severity)
    };
    assert_eq!(severity(96_000), Some(Severity::Low));
    assert_eq!(severity(95_000), Some(Severity::Medium));
    assert_eq!(severity(85_000), Some(Severity::High));
    assert_eq!(severity(75_000), Some(Severity::Critical));
}
