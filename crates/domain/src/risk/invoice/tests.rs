use chrono::TimeDelta;

use super::super::test_support::*;
use super::*;

use SignalKind::{DunningInProgress, InvoiceUncollectible, PaymentActionRequired, PaymentFailed};

const KEY: &str = "invoice:in_123";

fn now() -> DateTime<Utc> {
    at(2026, 1, 5, 12)
}

fn signals(invoice: &InvoiceState) -> Vec<SignalChange> {
    invoice_signals(invoice, now(), &RiskConfig::default())
}

fn invoice_evidence(draft: &SignalDraft) -> &InvoiceEvidence {
    match &draft.evidence {
        Evidence::Invoice(evidence) => evidence,
        other => panic!("not invoice evidence: {other:?}"),
    }
}

#[test]
fn statuses_parse_from_stripe_strings() {
    for status in InvoiceStatus::ALL {
        assert_eq!(status.as_str().parse::<InvoiceStatus>().unwrap(), status);
        assert_eq!(
            serde_json::to_string(&status).unwrap(),
            format!("\"{status}\"")
        );
    }
    for bad in ["", "Open", "voided", "deleted", "past_due"] {
        assert_eq!(
            bad.parse::<InvoiceStatus>(),
            Err(UnknownInvoiceStatus(bad.to_owned()))
        );
    }
}

#[test]
fn first_failure_raises_payment_failed_and_dunning_at_medium() {
    let changes = signals(&failed_invoice(1));
    assert_eq!(
        raised(&changes),
        [
            (PaymentFailed, KEY.to_owned(), Severity::Medium),
            (DunningInProgress, KEY.to_owned(), Severity::Medium),
        ]
    );
    assert_eq!(
        resolved(&changes),
        [(
            PaymentActionRequired,
            KEY.to_owned(),
            ResolveReason::ActionCompleted
        )]
    );
    let failed = draft(&changes, PaymentFailed);
    assert_eq!(
        failed.summary,
        "Payment of 490.00 USD failed (attempt 1, card_declined, 4 days late)"
    );
    assert_eq!(failed.customer_id.as_str(), "cus_1");
    assert_eq!(failed.objects, ["in_123", "sub_1"]);
    let dunning = draft(&changes, DunningInProgress);
    assert_eq!(
        dunning.summary,
        "Dunning 490.00 USD: 1 attempt failed, next retry 2026-01-08 10:00 UTC"
    );
    assert_eq!(
        invoice_evidence(dunning).dunning_stage,
        Some(DunningStage::Retrying { failed_attempts: 1 })
    );
    assert_eq!(invoice_evidence(failed).dunning_stage, None);
}

#[test]
fn severity_grows_with_attempts() {
    let severity = |attempts| draft(&signals(&failed_invoice(attempts)), PaymentFailed).severity;
    assert_eq!(severity(1), Severity::Medium);
    assert_eq!(severity(2), Severity::High);
    assert_eq!(severity(3), Severity::Critical);
    assert_eq!(severity(8), Severity::Critical);
    let dunning = |attempts| draft(&signals(&failed_invoice(attempts)), DunningInProgress).severity;
    assert_eq!(dunning(1), Severity::Medium);
    assert_eq!(dunning(2), Severity::High);
    assert_eq!(dunning(3), Severity::Critical);
}

#[test]
fn attempt_thresholds_are_configurable() {
    let config = RiskConfig {
        payment_failed_high_attempts: 3,
        payment_failed_critical_attempts: 5,
        ..RiskConfig::default()
    };
    let severity = |attempts| {
        draft(
            &invoice_signals(&failed_invoice(attempts), now(), &config),
            PaymentFailed,
        )
        .severity
    };
    assert_eq!(
        [1, 2, 3, 4, 5].map(severity),
        [
            Severity::Medium,
            Severity::Medium,
            Severity::High,
            Severity::High,
            Severity::Critical
        ]
    );
}

#[test]
fn high_value_invoices_go_one_step_up() {
    let big = |attempts| InvoiceState {
        amount_due: 250_000,
        amount_remaining: 250_000,
        ..failed_invoice(attempts)
    };
    let changes = signals(&big(1));
    assert_eq!(draft(&changes, PaymentFailed).severity, Severity::High);
    assert!(invoice_evidence(draft(&changes, PaymentFailed)).high_value);
    // Dunning is not bumped: the amount already weighs through the failure.
    assert_eq!(
        draft(&changes, DunningInProgress).severity,
        Severity::Medium
    );
    assert_eq!(
        draft(&signals(&big(2)), PaymentFailed).severity,
        Severity::Critical
    );
    // The threshold is reached at exactly 1,000.00 USD of what remains.
    let threshold = InvoiceState {
        amount_due: 500_000,
        amount_remaining: 100_000,
        ..failed_invoice(1)
    };
    assert_eq!(
        draft(&signals(&threshold), PaymentFailed).severity,
        Severity::High
    );
    let below = InvoiceState {
        amount_remaining: 99_999,
        ..threshold
    };
    assert_eq!(
        draft(&signals(&below), PaymentFailed).severity,
        Severity::Medium
    );
}

#[test]
fn zero_decimal_currency_uses_its_own_threshold_and_format() {
    let yen = |minor| InvoiceState {
        currency: Currency::JPY,
        amount_due: minor,
        amount_remaining: minor,
        ..failed_invoice(1)
    };
    let changes = signals(&yen(150_000));
    let failed = draft(&changes, PaymentFailed);
    assert_eq!(failed.severity, Severity::High);
    assert_eq!(
        failed.summary,
        "Payment of 150,000 JPY failed (attempt 1, card_declined, 4 days late)"
    );
    assert_eq!(
        invoice_evidence(failed).amount_remaining,
        Money::new(150_000, Currency::JPY)
    );
    // ¥49,000 is not high-value, although 49000 minor units of USD are 490 USD.
    assert_eq!(
        draft(&signals(&yen(49_000)), PaymentFailed).severity,
        Severity::Medium
    );
}

#[test]
fn currency_without_threshold_is_never_high_value() {
    let dinar = InvoiceState {
        currency: Currency::KWD,
        amount_due: 900_000_000,
        amount_remaining: 900_000_000,
        ..failed_invoice(1)
    };
    let changes = signals(&dinar);
    let failed = draft(&changes, PaymentFailed);
    assert_eq!(failed.severity, Severity::Medium);
    assert!(failed
        .summary
        .starts_with("Payment of 900,000.000 KWD failed"));
}

#[test]
fn a_payment_late_for_the_delinquency_window_is_critical() {
    let first_failed = at(2026, 1, 1, 10);
    let at_now = |now| invoice_signals(&failed_invoice(1), now, &RiskConfig::default());
    let just_before = first_failed + TimeDelta::days(30) - TimeDelta::seconds(1);
    assert_eq!(
        draft(&at_now(just_before), PaymentFailed).severity,
        Severity::Medium
    );
    let exactly = first_failed + TimeDelta::days(30);
    let changes = at_now(exactly);
    assert_eq!(draft(&changes, PaymentFailed).severity, Severity::Critical);
    assert_eq!(
        draft(&changes, DunningInProgress).severity,
        Severity::Critical
    );
    assert_eq!(
        invoice_evidence(draft(&changes, PaymentFailed)).days_delinquent,
        Some(30)
    );
    assert!(draft(&changes, PaymentFailed)
        .summary
        .ends_with("(attempt 1, card_declined, 30 days late)"));
}

#[test]
fn delinquency_counts_from_the_earlier_of_due_date_and_first_failure() {
    let invoice = InvoiceState {
        due_date: Some(at(2025, 12, 1, 0)),
        ..failed_invoice(1)
    };
    let changes = signals(&invoice);
    assert_eq!(
        invoice_evidence(draft(&changes, PaymentFailed)).days_delinquent,
        Some(35)
    );
    assert_eq!(draft(&changes, PaymentFailed).severity, Severity::Critical);
    // A due date in the future does not count; neither does a missing one.
    let future_due = InvoiceState {
        due_date: Some(at(2026, 2, 1, 0)),
        first_failed_at: None,
        ..failed_invoice(1)
    };
    let changes = signals(&future_due);
    let failed = draft(&changes, PaymentFailed);
    assert_eq!(invoice_evidence(failed).days_delinquent, None);
    assert_eq!(
        failed.summary,
        "Payment of 490.00 USD failed (attempt 1, card_declined)"
    );
}

#[test]
fn less_than_a_day_late_is_not_mentioned() {
    let invoice = InvoiceState {
        first_failed_at: Some(now() - TimeDelta::hours(3)),
        ..failed_invoice(2)
    };
    let changes = signals(&invoice);
    let failed = draft(&changes, PaymentFailed);
    assert_eq!(invoice_evidence(failed).days_delinquent, Some(0));
    assert_eq!(
        failed.summary,
        "Payment of 490.00 USD failed (attempt 2, card_declined)"
    );
}

#[test]
fn no_retry_scheduled_means_retries_exhausted_and_critical() {
    let invoice = InvoiceState {
        next_payment_attempt: None,
        ..failed_invoice(4)
    };
    let changes = signals(&invoice);
    let dunning = draft(&changes, DunningInProgress);
    assert_eq!(dunning.severity, Severity::Critical);
    assert_eq!(
        invoice_evidence(dunning).dunning_stage,
        Some(DunningStage::RetriesExhausted)
    );
    assert_eq!(
        dunning.summary,
        "Dunning 490.00 USD: 4 attempts failed, no retry scheduled"
    );
    // Even after a single attempt (automatic collection off, or a one-try
    // retry schedule): Stripe will not try again by itself.
    let once = InvoiceState {
        next_payment_attempt: None,
        ..failed_invoice(1)
    };
    let dunning_once = signals(&once);
    assert_eq!(
        draft(&dunning_once, DunningInProgress).severity,
        Severity::Critical
    );
    assert_eq!(
        draft(&dunning_once, PaymentFailed).severity,
        Severity::Medium
    );
}

#[test]
fn dunning_stage_follows_the_attempt_count() {
    for attempts in 1..=5 {
        let changes = signals(&failed_invoice(attempts));
        assert_eq!(
            invoice_evidence(draft(&changes, DunningInProgress))
                .dunning_stage
                .unwrap()
                .name(),
            format!("retry_{attempts}")
        );
    }
}

#[test]
fn an_invoice_not_yet_attempted_raises_nothing() {
    assert_eq!(signals(&invoice()), []);
    let scheduled = InvoiceState {
        next_payment_attempt: Some(at(2026, 1, 5, 13)),
        ..invoice()
    };
    assert_eq!(signals(&scheduled), []);
}

#[test]
fn draft_invoices_raise_and_resolve_nothing() {
    let draft_invoice = InvoiceState {
        status: InvoiceStatus::Draft,
        ..failed_invoice(2)
    };
    assert_eq!(signals(&draft_invoice), []);
}

#[test]
fn paid_resolves_every_invoice_signal() {
    let paid = InvoiceState {
        status: InvoiceStatus::Paid,
        amount_remaining: 0,
        paid_at: Some(now()),
        ..failed_invoice(3)
    };
    let changes = signals(&paid);
    assert_eq!(raised(&changes), []);
    assert_eq!(
        resolved(&changes),
        [
            (PaymentFailed, KEY.to_owned(), ResolveReason::Paid),
            (DunningInProgress, KEY.to_owned(), ResolveReason::Paid),
            (PaymentActionRequired, KEY.to_owned(), ResolveReason::Paid),
            (InvoiceUncollectible, KEY.to_owned(), ResolveReason::Paid),
        ]
    );
}

#[test]
fn settled_open_invoices_count_as_paid() {
    for settled in [
        InvoiceState {
            amount_remaining: 0,
            ..failed_invoice(2)
        },
        InvoiceState {
            amount_remaining: -100,
            ..failed_invoice(2)
        },
        InvoiceState {
            paid_at: Some(now()),
            ..failed_invoice(2)
        },
    ] {
        let changes = signals(&settled);
        assert_eq!(raised(&changes), []);
        assert_eq!(resolved(&changes).len(), 4);
        assert!(changes
            .iter()
            .all(|c| c.resolve_reason() == Some(ResolveReason::Paid)));
    }
}

#[test]
fn void_resolves_every_invoice_signal_as_voided() {
    let void = InvoiceState {
        status: InvoiceStatus::Void,
        ..failed_invoice(2)
    };
    let changes = signals(&void);
    assert_eq!(raised(&changes), []);
    let reasons: Vec<_> = resolved(&changes).into_iter().map(|r| (r.0, r.2)).collect();
    assert_eq!(
        reasons,
        [
            (PaymentFailed, ResolveReason::Voided),
            (DunningInProgress, ResolveReason::Voided),
            (PaymentActionRequired, ResolveReason::Voided),
            (InvoiceUncollectible, ResolveReason::Voided),
        ]
    );
}

#[test]
fn uncollectible_raises_the_write_off_and_resolves_dunning() {
    let invoice = InvoiceState {
        status: InvoiceStatus::Uncollectible,
        next_payment_attempt: None,
        ..failed_invoice(4)
    };
    let changes = signals(&invoice);
    assert_eq!(
        raised(&changes),
        [(InvoiceUncollectible, KEY.to_owned(), Severity::High)]
    );
    assert_eq!(
        resolved(&changes),
        [
            (
                PaymentFailed,
                KEY.to_owned(),
                ResolveReason::MarkedUncollectible
            ),
            (
                DunningInProgress,
                KEY.to_owned(),
                ResolveReason::MarkedUncollectible
            ),
            (
                PaymentActionRequired,
                KEY.to_owned(),
                ResolveReason::MarkedUncollectible
            ),
        ]
    );
    let write_off = draft(&changes, InvoiceUncollectible);
    assert_eq!(
        write_off.summary,
        "Invoice in_123 marked uncollectible: 490.00 USD written off after 4 attempts"
    );
    let evidence = invoice_evidence(write_off);
    assert_eq!(evidence.status, InvoiceStatus::Uncollectible);
    assert_eq!(evidence.attempt_count, 4);
    assert_eq!(evidence.failure_code.as_deref(), Some("card_declined"));
}

#[test]
fn high_value_uncollectible_is_critical() {
    let invoice = InvoiceState {
        status: InvoiceStatus::Uncollectible,
        amount_due: 120_000,
        amount_remaining: 120_000,
        ..failed_invoice(1)
    };
    assert_eq!(
        draft(&signals(&invoice), InvoiceUncollectible).severity,
        Severity::Critical
    );
}

#[test]
fn uncollectible_never_attempted_still_counts_its_attempts_in_words() {
    let invoice = InvoiceState {
        status: InvoiceStatus::Uncollectible,
        ..invoice()
    };
    assert_eq!(
        draft(&signals(&invoice), InvoiceUncollectible).summary,
        "Invoice in_123 marked uncollectible: 490.00 USD written off after 0 attempts"
    );
}

#[test]
fn uncollectible_then_paid_resolves_the_write_off() {
    let invoice = InvoiceState {
        status: InvoiceStatus::Uncollectible,
        amount_remaining: 0,
        paid_at: Some(now()),
        ..failed_invoice(4)
    };
    let changes = signals(&invoice);
    assert_eq!(raised(&changes), []);
    assert!(resolved(&changes).contains(&(
        InvoiceUncollectible,
        KEY.to_owned(),
        ResolveReason::Paid
    )));
}

#[test]
fn first_attempt_awaiting_authentication_is_only_action_required() {
    for code in [None, Some("authentication_required")] {
        let invoice = InvoiceState {
            requires_action: true,
            last_failure_code: code.map(str::to_owned),
            next_payment_attempt: None,
            ..failed_invoice(1)
        };
        let changes = signals(&invoice);
        assert_eq!(
            raised(&changes),
            [(PaymentActionRequired, KEY.to_owned(), Severity::Medium)],
            "{code:?}"
        );
        assert_eq!(resolved(&changes), []);
        assert_eq!(
            draft(&changes, PaymentActionRequired).summary,
            "Payment of 490.00 USD needs the customer to authenticate (3-D Secure)"
        );
    }
    // Before any attempt (Stripe asks for authentication up front).
    let up_front = InvoiceState {
        requires_action: true,
        ..invoice()
    };
    assert_eq!(
        raised(&signals(&up_front)),
        [(PaymentActionRequired, KEY.to_owned(), Severity::Medium)]
    );
}

#[test]
fn action_required_after_a_real_failure_comes_with_the_failure() {
    let declined_then_sca = InvoiceState {
        requires_action: true,
        ..failed_invoice(1)
    };
    let kinds: Vec<_> = raised(&signals(&declined_then_sca))
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(
        kinds,
        [PaymentFailed, DunningInProgress, PaymentActionRequired]
    );
    let second_attempt = InvoiceState {
        requires_action: true,
        last_failure_code: Some("authentication_required".to_owned()),
        ..failed_invoice(2)
    };
    let kinds: Vec<_> = raised(&signals(&second_attempt))
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(
        kinds,
        [PaymentFailed, DunningInProgress, PaymentActionRequired]
    );
}

#[test]
fn high_value_action_required_is_high() {
    let invoice = InvoiceState {
        requires_action: true,
        amount_remaining: 1_000_000,
        ..invoice()
    };
    assert_eq!(
        draft(&signals(&invoice), PaymentActionRequired).severity,
        Severity::High
    );
}

#[test]
fn missing_optional_fields_are_fine() {
    let bare = InvoiceState {
        subscription_id: None,
        first_failed_at: None,
        last_failure_code: None,
        last_failure_message: None,
        billing_reason: None,
        next_payment_attempt: None,
        ..failed_invoice(2)
    };
    let changes = signals(&bare);
    let failed = draft(&changes, PaymentFailed);
    assert_eq!(failed.summary, "Payment of 490.00 USD failed (attempt 2)");
    assert_eq!(failed.objects, ["in_123"]);
    let evidence = invoice_evidence(failed);
    assert_eq!(evidence.subscription_id, None);
    assert_eq!(evidence.days_delinquent, None);
    assert_eq!(evidence.failure_message, None);
}

#[test]
fn evidence_carries_amounts_with_currency_attempts_and_dates() {
    let changes = signals(&InvoiceState {
        amount_due: 60_000,
        ..failed_invoice(2)
    });
    let evidence = invoice_evidence(draft(&changes, PaymentFailed));
    assert_eq!(evidence.amount_due, Money::new(60_000, Currency::USD));
    assert_eq!(evidence.amount_remaining, Money::new(49_000, Currency::USD));
    assert_eq!(evidence.attempt_count, 2);
    assert_eq!(evidence.next_payment_attempt, Some(at(2026, 1, 8, 10)));
    assert_eq!(
        evidence.failure_message.as_deref(),
        Some("Your card was declined.")
    );
    assert_eq!(
        evidence.billing_reason.as_deref(),
        Some("subscription_cycle")
    );
    assert!(!evidence.high_value);
    let json = serde_json::to_value(&draft(&changes, DunningInProgress).evidence).unwrap();
    assert_eq!(json["type"], "invoice");
    assert_eq!(json["amount_remaining"]["minor"], 49_000);
    assert_eq!(json["amount_remaining"]["currency"], "usd");
    assert_eq!(json["dunning_stage"], "retry_2");
    assert_eq!(json["next_payment_attempt"], "2026-01-08T10:00:00Z");
}

#[test]
fn replaying_the_same_state_gives_the_same_changes() {
    let states = [
        failed_invoice(1),
        failed_invoice(3),
        InvoiceState {
            status: InvoiceStatus::Paid,
            amount_remaining: 0,
            ..failed_invoice(2)
        },
    ];
    for state in states {
        let first = signals(&state);
        let replay = signals(&state.clone());
        assert_eq!(first, replay);
    }
}

#[test]
fn recovery_sequence_raises_then_resolves_the_same_keys() {
    let failing = signals(&failed_invoice(2));
    let paid = signals(&InvoiceState {
        status: InvoiceStatus::Paid,
        amount_remaining: 0,
        ..failed_invoice(2)
    });
    for raise in raised(&failing) {
        assert!(
            resolved(&paid)
                .iter()
                .any(|r| r.0 == raise.0 && r.1 == raise.1),
            "{raise:?} is not resolved by payment"
        );
    }
}
