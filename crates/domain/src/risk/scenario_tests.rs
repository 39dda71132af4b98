//! The rules driven the way the service drives them (docs/risk-model.md,
//! section 1), through a minimal in-memory store that implements the
//! raise/resolve contract: the worked example, replays, re-raises, a card
//! replacement and a downgrade's life.

use std::collections::BTreeSet;

use chrono::{DateTime, TimeDelta, Utc};

use super::test_support::*;
use super::*;

/// Signals of one account, and the alerts delivered.
#[derive(Default)]
struct Store {
    signals: Vec<SignalRecord>,
    alerts: BTreeSet<(String, String)>,
}

impl Store {
    fn apply(&mut self, changes: &[SignalChange], now: DateTime<Utc>, rules: &[AlertRule]) {
        for change in changes {
            let open = self.signals.iter_mut().find(|s| {
                s.is_open() && s.kind == change.kind() && &s.cause_key == change.cause_key()
            });
            match (change, open) {
                (SignalChange::Raise(draft), Some(open)) => {
                    open.severity = draft.severity;
                    let id = open.id.clone();
                    self.alert(&id, draft, rules);
                }
                (SignalChange::Raise(draft), None) => {
                    let id = format!("sig_{}", self.signals.len() + 1);
                    self.signals.push(SignalRecord {
                        id: id.clone(),
                        kind: draft.kind,
                        cause_key: draft.cause_key.clone(),
                        severity: draft.severity,
                        raised_at: now,
                        resolved_at: None,
                    });
                    self.alert(&id, draft, rules);
                }
                (SignalChange::Resolve { .. }, Some(open)) => open.resolved_at = Some(now),
                (SignalChange::Resolve { .. }, None) => {}
            }
        }
    }

    fn alert(&mut self, id: &str, draft: &SignalDraft, rules: &[AlertRule]) {
        for rule in rules {
            if rule_matches(rule, draft.kind, draft.severity, Some("u_ana")) {
                self.alerts
                    .insert((id.to_owned(), rule.csm_user_id.clone()));
            }
        }
    }

    fn score(&self, now: DateTime<Utc>) -> HealthScore {
        health_score(&self.signals, now, &HealthWeights::default())
    }

    fn open(&self) -> Vec<(SignalKind, Severity)> {
        self.signals
            .iter()
            .filter(|s| s.is_open())
            .map(|s| (s.kind, s.severity))
            .collect()
    }
}

fn ana_rules() -> Vec<AlertRule> {
    vec![
        parse_alert_command("Alert me on payment failures")
            .unwrap()
            .into_rule("u_ana"),
        parse_alert_command("alert me on critical payment failures for all accounts")
            .unwrap()
            .into_rule("u_boss"),
    ]
}

#[test]
fn worked_example_failure_recovery_and_a_new_failure() {
    let config = RiskConfig::default();
    let rules = ana_rules();
    let mut store = Store::default();

    let first = at(2026, 1, 1, 10);
    let attempt_1 = InvoiceState {
        first_failed_at: Some(first),
        ..failed_invoice(1)
    };
    store.apply(&invoice_signals(&attempt_1, first, &config), first, &rules);
    assert_eq!(
        store.open(),
        [
            (SignalKind::PaymentFailed, Severity::Medium),
            (SignalKind::DunningInProgress, Severity::Medium)
        ]
    );
    let health = store.score(first);
    assert_eq!((health.score, health.band), (68, HealthBand::Watch));
    assert_eq!(store.alerts.len(), 1, "Ana, once");

    // The same fact delivered again: nothing changes.
    store.apply(&invoice_signals(&attempt_1, first, &config), first, &rules);
    assert_eq!(store.signals.len(), 2);
    assert_eq!(store.alerts.len(), 1);

    let second = at(2026, 1, 8, 10);
    let attempt_2 = InvoiceState {
        attempt_count: 2,
        next_payment_attempt: Some(at(2026, 1, 15, 10)),
        ..attempt_1.clone()
    };
    store.apply(
        &invoice_signals(&attempt_2, second, &config),
        second,
        &rules,
    );
    assert_eq!(store.signals.len(), 2, "the same signals, escalated");
    let health = store.score(second);
    assert_eq!((health.score, health.band), (51, HealthBand::AtRisk));
    assert_eq!(store.alerts.len(), 1, "no second alert for the same signal");

    let paid_at = at(2026, 1, 10, 9);
    let paid = InvoiceState {
        status: InvoiceStatus::Paid,
        amount_remaining: 0,
        paid_at: Some(paid_at),
        ..attempt_2.clone()
    };
    store.apply(&invoice_signals(&paid, paid_at, &config), paid_at, &rules);
    assert!(store.open().is_empty());
    // Paid: half of 30 + 18.75 at once, then halving every 14 days.
    let health = store.score(paid_at);
    assert_eq!(health.total_deduction, 24.38);
    assert_eq!(
        (health.score, health.band),
        (76, HealthBand::Watch),
        "the money came in: the score recovers at once"
    );
    let health = store.score(paid_at + TimeDelta::days(14));
    assert_eq!((health.score, health.band), (88, HealthBand::Healthy));
    assert_eq!(store.score(paid_at + TimeDelta::days(28)).score, 94);
    assert_eq!(store.score(paid_at + TimeDelta::days(90)).score, 100);

    // A late duplicate of the paid fact changes nothing.
    store.apply(&invoice_signals(&paid, paid_at, &config), paid_at, &rules);
    assert_eq!(store.signals.len(), 2);

    // Next month's invoice fails: new cause, new signals, a new alert.
    let february = at(2026, 2, 1, 10);
    let next_invoice = InvoiceState {
        invoice_id: crate::ids::StripeInvoiceId::parse("in_124").unwrap(),
        first_failed_at: Some(february),
        ..failed_invoice(1)
    };
    store.apply(
        &invoice_signals(&next_invoice, february, &config),
        february,
        &rules,
    );
    assert_eq!(store.signals.len(), 4);
    assert_eq!(store.alerts.len(), 2);
}

#[test]
fn third_failure_alerts_the_critical_only_rule_at_the_escalation() {
    let config = RiskConfig::default();
    let rules = ana_rules();
    let mut store = Store::default();
    let now = at(2026, 1, 1, 12);
    for attempts in 1..=3 {
        store.apply(
            &invoice_signals(&failed_invoice(attempts), now, &config),
            now,
            &rules,
        );
        let boss = store
            .alerts
            .iter()
            .filter(|(_, csm)| csm == "u_boss")
            .count();
        assert_eq!(boss, usize::from(attempts == 3), "attempt {attempts}");
    }
    assert_eq!(store.score(now).score, 35);
    assert_eq!(store.score(now).band, HealthBand::Critical);
}

#[test]
fn three_invoices_failing_once_weigh_like_a_crisis() {
    let config = RiskConfig::default();
    let mut store = Store::default();
    let now = at(2026, 1, 1, 12);
    for id in ["in_1", "in_2", "in_3"] {
        let invoice = InvoiceState {
            invoice_id: crate::ids::StripeInvoiceId::parse(id).unwrap(),
            ..failed_invoice(1)
        };
        store.apply(&invoice_signals(&invoice, now, &config), now, &[]);
    }
    let health = store.score(now);
    assert_eq!(health.total_deduction, 97.5);
    assert_eq!(health.score, 3);
    assert_eq!(health.components.len(), 6);
}

#[test]
fn card_expiring_in_twenty_days_then_replaced() {
    let config = RiskConfig::default();
    let mut store = Store::default();
    let today = day(2026, 12, 11);
    let now = at(2026, 12, 11, 6);
    store.apply(&card_signals(&card(), today, &config).unwrap(), now, &[]);
    assert_eq!(store.open(), [(SignalKind::CardExpiring, Severity::Medium)]);
    assert_eq!(store.score(now).score, 95);

    // The daily scan the next day: same signal, no duplicate.
    store.apply(
        &card_signals(&card(), today.succ_opt().unwrap(), &config).unwrap(),
        now,
        &[],
    );
    assert_eq!(store.signals.len(), 1);

    // The customer sets a new default card.
    let new_card = CardState {
        payment_method_id: pm("pm_2"),
        exp_year: 2030,
        ..card()
    };
    let old_card = CardState {
        is_default: false,
        ..card()
    };
    let later = now + TimeDelta::hours(2);
    store.apply(
        &card_signals(&new_card, today, &config).unwrap(),
        later,
        &[],
    );
    store.apply(
        &card_signals(&old_card, today, &config).unwrap(),
        later,
        &[],
    );
    store.apply(
        &card_replaced(&store.signals.clone(), Some(&new_card)),
        later,
        &[],
    );
    assert!(store.open().is_empty());
    assert_eq!(
        store.score(later).score,
        100,
        "a replaced card leaves no trace"
    );
}

#[test]
fn card_updated_in_place_only_through_card_replaced() {
    let config = RiskConfig::default();
    let mut store = Store::default();
    let today = day(2026, 12, 11);
    let now = at(2026, 12, 11, 6);
    store.apply(&card_signals(&card(), today, &config).unwrap(), now, &[]);
    // The account updater extends pm_1: the rule for the new expiry raises
    // nothing and resolves only the new key...
    let updated = CardState {
        exp_year: 2029,
        ..card()
    };
    store.apply(&card_signals(&updated, today, &config).unwrap(), now, &[]);
    assert_eq!(
        store.open().len(),
        1,
        "the old key is not the rule's any more"
    );
    // ...and card_replaced closes the old one.
    store.apply(
        &card_replaced(&store.signals.clone(), Some(&updated)),
        now,
        &[],
    );
    assert!(store.open().is_empty());
}

#[test]
fn a_downgrade_is_raised_once_then_ages_out_and_fades() {
    let config = RiskConfig::default();
    let mut store = Store::default();
    let downgrade = SubscriptionChange {
        mrr_after: 60_000,
        quantity_after: Some(6),
        ..change()
    };
    let occurred = downgrade.occurred_at;
    store.apply(&subscription_signals(&downgrade, &config), occurred, &[]);
    store.apply(&subscription_signals(&downgrade, &config), occurred, &[]);
    assert_eq!(
        store.open(),
        [(SignalKind::SubscriptionDowngrade, Severity::High)]
    );
    assert_eq!(store.score(occurred).score, 78);

    // A later unrelated change of the subscription does not touch it.
    let later_change = SubscriptionChange {
        mrr_before: 60_000,
        mrr_after: 60_000,
        quantity_before: Some(6),
        quantity_after: Some(6),
        occurred_at: occurred + TimeDelta::days(3),
        ..change()
    };
    store.apply(
        &subscription_signals(&later_change, &config),
        later_change.occurred_at,
        &[],
    );
    assert_eq!(store.open().len(), 1);

    let day_29 = occurred + TimeDelta::days(29);
    store.apply(
        &age_out_signals(&store.signals.clone(), day_29, &config),
        day_29,
        &[],
    );
    assert_eq!(store.open().len(), 1);
    let day_30 = occurred + TimeDelta::days(30);
    store.apply(
        &age_out_signals(&store.signals.clone(), day_30, &config),
        day_30,
        &[],
    );
    assert!(store.open().is_empty());
    assert_eq!(
        store.score(day_30).score,
        89,
        "just aged out: half of 22.5 (88.75)"
    );
    assert_eq!(
        store.score(day_30 + TimeDelta::days(14)).score,
        94,
        "a quarter of 22.5 is 5.625, rounded to 5.63"
    );
    assert_eq!(store.score(day_30 + TimeDelta::days(90)).score, 100);
}

#[test]
fn cancellation_requested_withdrawn_then_requested_again_is_two_signals() {
    let config = RiskConfig::default();
    let rules = vec![parse_alert_command("alert me on cancellations")
        .unwrap()
        .into_rule("u_ana")];
    let mut store = Store::default();
    let request = SubscriptionChange {
        cancel_at_period_end: true,
        mrr_after: 0,
        ..change()
    };
    let withdraw = SubscriptionChange {
        mrr_before: 0,
        ..change()
    };
    let t = |days| change().occurred_at + TimeDelta::days(days);
    store.apply(&subscription_signals(&request, &config), t(0), &rules);
    assert_eq!(store.score(t(0)).score, 55);
    store.apply(&subscription_signals(&withdraw, &config), t(2), &rules);
    assert!(store.open().is_empty());
    store.apply(&subscription_signals(&request, &config), t(5), &rules);
    assert_eq!(
        store.signals.len(),
        2,
        "a raise after a resolve is a new signal"
    );
    assert_eq!(store.alerts.len(), 2);
}
