//! Invariants of the risk rules, checked on generated inputs.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, TimeDelta, Utc};
use proptest::prelude::*;

use crate::matching::AccountId;
use crate::money::{Currency, Money, MoneyByCurrency};
use crate::mrr::SubscriptionStatus;

use super::test_support::*;
use super::*;

fn now() -> DateTime<Utc> {
    at(2026, 6, 1, 12)
}

fn kind() -> impl Strategy<Value = SignalKind> {
    (0..SignalKind::ALL.len()).prop_map(|i| SignalKind::ALL[i])
}

fn severity() -> impl Strategy<Value = Severity> {
    (0..Severity::ALL.len()).prop_map(|i| Severity::ALL[i])
}

/// Records with distinct ids, raised up to 200 days ago, some resolved up
/// to 120 days ago (some "in the future", as with clock skew).
fn records() -> impl Strategy<Value = Vec<SignalRecord>> {
    prop::collection::vec(
        (
            kind(),
            severity(),
            0i64..200 * 86_400,
            prop::option::of(-3_600i64..120 * 86_400),
        ),
        0..12,
    )
    .prop_map(|raw| {
        raw.into_iter()
            .enumerate()
            .map(
                |(i, (kind, severity, raised_ago, resolved_ago))| SignalRecord {
                    id: format!("sig_{i}"),
                    kind,
                    cause_key: CauseKey::from_stored(format!("invoice:in_{}", i % 4)),
                    severity,
                    raised_at: now() - TimeDelta::seconds(raised_ago),
                    resolved_at: resolved_ago.map(|ago| now() - TimeDelta::seconds(ago)),
                },
            )
            .collect()
    })
}

fn status() -> impl Strategy<Value = SubscriptionStatus> {
    (0..SubscriptionStatus::ALL.len()).prop_map(|i| SubscriptionStatus::ALL[i])
}

fn invoice_status() -> impl Strategy<Value = InvoiceStatus> {
    (0..InvoiceStatus::ALL.len()).prop_map(|i| InvoiceStatus::ALL[i])
}

fn currency() -> impl Strategy<Value = Currency> {
    prop::sample::select(vec![
        Currency::USD,
        Currency::JPY,
        Currency::KWD,
        Currency::EUR,
    ])
}

prop_compose! {
    fn invoice_state()(
        status in invoice_status(),
        amount_due in 0i64..1_000_000,
        remaining in -100i64..1_000_000,
        currency in currency(),
        attempt_count in 0u32..10,
        next in prop::option::of(0i64..30),
        due in prop::option::of(-60i64..60),
        first_failed in prop::option::of(0i64..90),
        paid in any::<bool>(),
        code in prop::option::of(prop::sample::select(vec!["card_declined", "authentication_required", "expired_card"])),
        requires_action in any::<bool>(),
        subscription in any::<bool>(),
    ) -> InvoiceState {
        InvoiceState {
            status,
            amount_due,
            amount_remaining: remaining,
            currency,
            attempt_count,
            next_payment_attempt: next.map(|d| now() + TimeDelta::days(d)),
            due_date: due.map(|d| now() + TimeDelta::days(d)),
            paid_at: paid.then(now),
            first_failed_at: first_failed.map(|d| now() - TimeDelta::days(d)),
            last_failure_code: code.map(str::to_owned),
            requires_action,
            subscription_id: subscription.then(sub_id),
            ..invoice()
        }
    }
}

prop_compose! {
    fn subscription_change()(
        status_before in prop::option::of(status()),
        status_after in status(),
        quantity_before in prop::option::of(0u64..50),
        quantity_after in prop::option::of(0u64..50),
        mrr_before in -10i64..500_000,
        mrr_after in -10i64..500_000,
        cancel_at_period_end in any::<bool>(),
        canceled_days_ago in prop::option::of(0i64..100),
    ) -> SubscriptionChange {
        SubscriptionChange {
            status_before,
            status_after,
            quantity_before,
            quantity_after,
            mrr_before,
            mrr_after,
            cancel_at_period_end,
            canceled_at: canceled_days_ago.map(|d| change().occurred_at - TimeDelta::days(d)),
            ..change()
        }
    }
}

/// No `(kind, cause_key)` appears twice in one output.
fn assert_one_change_per_signal(changes: &[SignalChange]) -> Result<(), TestCaseError> {
    let mut seen = BTreeSet::new();
    for change in changes {
        prop_assert!(
            seen.insert((change.kind(), change.cause_key().clone())),
            "{:?} twice in {:#?}",
            change.kind(),
            changes
        );
    }
    Ok(())
}

proptest! {
    #[test]
    fn health_is_order_independent(signals in records(), seed in any::<u64>()) {
        let weights = HealthWeights::default();
        let mut shuffled = signals.clone();
        // A deterministic permutation from the seed.
        let len = shuffled.len().max(1);
        shuffled.rotate_left((seed as usize) % len);
        if seed % 2 == 0 {
            shuffled.reverse();
        }
        prop_assert_eq!(
            health_score(&signals, now(), &weights),
            health_score(&shuffled, now(), &weights)
        );
    }

    #[test]
    fn health_stays_in_range_and_matches_its_band(signals in records()) {
        let weights = HealthWeights::default();
        let health = health_score(&signals, now(), &weights);
        prop_assert!(health.score <= 100);
        let bands = &weights.bands;
        let expected = if health.score >= bands.healthy_min {
            HealthBand::Healthy
        } else if health.score >= bands.watch_min {
            HealthBand::Watch
        } else if health.score >= bands.at_risk_min {
            HealthBand::AtRisk
        } else {
            HealthBand::Critical
        };
        prop_assert_eq!(health.band, expected);
        let deductions: Vec<f64> = health.components.iter().map(|c| c.deduction).collect();
        prop_assert!(deductions.windows(2).all(|w| w[0] >= w[1]), "sorted: {:?}", deductions);
        prop_assert!(health.components.iter().all(|c| c.deduction >= 0.0 && c.decay_factor <= 1.0));
    }

    #[test]
    fn adding_an_open_signal_never_raises_the_score(
        signals in records(),
        kind in kind(),
        severity in severity(),
    ) {
        let weights = HealthWeights::default();
        let before = health_score(&signals, now(), &weights).score;
        let mut more = signals;
        more.push(SignalRecord {
            id: "sig_new".to_owned(),
            kind,
            cause_key: CauseKey::from_stored("invoice:in_new"),
            severity,
            raised_at: now(),
            resolved_at: None,
        });
        prop_assert!(health_score(&more, now(), &weights).score <= before);
    }

    #[test]
    fn resolving_a_signal_never_lowers_the_score(
        signals in records(),
        index in any::<prop::sample::Index>(),
        resolved_ago in -3_600i64..200 * 86_400,
        initial in 0.0f64..=1.0,
    ) {
        prop_assume!(!signals.is_empty());
        let weights = HealthWeights { resolved_initial_factor: initial, ..HealthWeights::default() };
        prop_assert!(weights.validate().is_ok());
        let mut opened = signals.clone();
        let i = index.index(opened.len());
        opened[i].resolved_at = None;
        let mut resolved = opened.clone();
        resolved[i].resolved_at = Some(now() - TimeDelta::seconds(resolved_ago));
        prop_assert!(
            health_score(&resolved, now(), &weights).score
                >= health_score(&opened, now(), &weights).score
        );
    }

    /// With the default initial factor (0.5), resolving is strictly better:
    /// at least half the signal's deduction goes at once (all of it past the
    /// cutoff or for a clear_on_resolve kind), so the score rises unless it
    /// is stuck at 0.
    #[test]
    fn resolving_a_signal_takes_at_least_half_its_deduction_off(
        signals in records(),
        index in any::<prop::sample::Index>(),
        resolved_ago in -3_600i64..200 * 86_400,
    ) {
        prop_assume!(!signals.is_empty());
        let weights = HealthWeights::default();
        let mut opened = signals.clone();
        let i = index.index(opened.len());
        opened[i].resolved_at = None;
        let mut resolved = opened.clone();
        resolved[i].resolved_at = Some(now() - TimeDelta::seconds(resolved_ago));
        let before = health_score(&opened, now(), &weights);
        let after = health_score(&resolved, now(), &weights);
        let deduction = |health: &HealthScore| {
            health
                .components
                .iter()
                .find(|c| c.signal_id == opened[i].id)
                .map_or(0.0, |c| c.deduction)
        };
        let open_deduction = deduction(&before);
        prop_assert!(open_deduction >= 2.5, "every default weight deducts: {}", open_deduction);
        // Half, give or take the rounding to hundredths.
        prop_assert!(
            deduction(&after) <= open_deduction * weights.resolved_initial_factor + 0.0051,
            "{} open, {} resolved", open_deduction, deduction(&after)
        );
        prop_assert!(after.total_deduction < before.total_deduction);
        if before.total_deduction <= 100.0 {
            prop_assert!(after.score > before.score, "{} → {}", before.score, after.score);
        }
    }

    #[test]
    fn a_smaller_initial_factor_never_lowers_the_score(
        signals in records(),
        a in 0.0f64..=1.0,
        b in 0.0f64..=1.0,
    ) {
        let with = |initial: f64| {
            health_score(
                &signals,
                now(),
                &HealthWeights { resolved_initial_factor: initial, ..HealthWeights::default() },
            )
        };
        let (low, high) = (with(a.min(b)), with(a.max(b)));
        prop_assert!(low.score >= high.score);
        prop_assert!(low.total_deduction <= high.total_deduction);
        // Open signals do not depend on it.
        let open = |health: &HealthScore| -> Vec<(String, f64)> {
            let mut open: Vec<_> = health
                .components
                .iter()
                .filter(|c| c.open)
                .map(|c| (c.signal_id.clone(), c.deduction))
                .collect();
            open.sort_by(|x, y| x.0.cmp(&y.0));
            open
        };
        prop_assert_eq!(open(&low), open(&high));
    }

    #[test]
    fn time_heals(
        signals in records(),
        later in 0i64..400 * 86_400,
        initial in prop::sample::select(vec![0.0, 0.5, 1.0]),
    ) {
        let weights = HealthWeights { resolved_initial_factor: initial, ..HealthWeights::default() };
        let at_now = health_score(&signals, now(), &weights).score;
        let at_later = health_score(&signals, now() + TimeDelta::seconds(later), &weights).score;
        prop_assert!(at_later >= at_now);
    }

    #[test]
    fn invoice_rules_are_consistent(invoice in invoice_state()) {
        let config = RiskConfig::default();
        let changes = invoice_signals(&invoice, now(), &config);
        prop_assert_eq!(&changes, &invoice_signals(&invoice.clone(), now(), &config));
        assert_one_change_per_signal(&changes)?;
        let key = CauseKey::invoice(&invoice.invoice_id);
        prop_assert!(changes.iter().all(|c| c.cause_key() == &key));
        let raises: Vec<&SignalDraft> = changes.iter().filter_map(SignalChange::as_raise).collect();
        let settled = invoice.paid_at.is_some()
            || invoice.amount_remaining <= 0
            || matches!(invoice.status, InvoiceStatus::Paid | InvoiceStatus::Void | InvoiceStatus::Draft);
        if settled {
            prop_assert!(raises.is_empty(), "settled invoices raise nothing: {:#?}", changes);
        }
        for draft in raises {
            prop_assert_eq!(&draft.customer_id, &invoice.customer_id);
            prop_assert_eq!(draft.objects.first(), Some(&invoice.invoice_id.to_string()));
            let Evidence::Invoice(evidence) = &draft.evidence else {
                return Err(TestCaseError::fail("invoice signals carry invoice evidence"));
            };
            prop_assert_eq!(evidence.amount_remaining, Money::new(invoice.amount_remaining, invoice.currency));
            prop_assert!(!draft.summary.is_empty());
        }
    }

    #[test]
    fn failed_payment_severity_never_drops_with_more_attempts(
        invoice in invoice_state(),
        extra in 1u32..5,
    ) {
        let config = RiskConfig::default();
        let severity = |invoice: &InvoiceState| {
            invoice_signals(invoice, now(), &config)
                .iter()
                .filter_map(SignalChange::as_raise)
                .find(|d| d.kind == SignalKind::PaymentFailed)
                .map(|d| d.severity)
        };
        let more = InvoiceState { attempt_count: invoice.attempt_count + extra, ..invoice.clone() };
        if let Some(before) = severity(&invoice) {
            prop_assert!(severity(&more).is_some_and(|after| after >= before));
        }
    }

    #[test]
    fn subscription_rules_are_consistent(change in subscription_change()) {
        let config = RiskConfig::default();
        let changes = subscription_signals(&change, &config);
        prop_assert_eq!(&changes, &subscription_signals(&change.clone(), &config));
        assert_one_change_per_signal(&changes)?;
        for draft in changes.iter().filter_map(SignalChange::as_raise) {
            prop_assert_eq!(&draft.objects, &vec![change.subscription_id.to_string()]);
            if draft.kind == SignalKind::SubscriptionDowngrade {
                let live = |s: SubscriptionStatus| matches!(
                    s,
                    SubscriptionStatus::Active | SubscriptionStatus::PastDue | SubscriptionStatus::Trialing
                );
                prop_assert!(change.status_before.is_some_and(live) && live(change.status_after));
                prop_assert!(
                    change.mrr_after.max(0) < change.mrr_before.max(0)
                        || change.quantity_after < change.quantity_before
                );
            }
            if draft.kind == SignalKind::CancellationRequested {
                prop_assert!(change.cancel_at_period_end);
            }
        }
        let ended = matches!(
            change.status_after,
            SubscriptionStatus::Canceled | SubscriptionStatus::IncompleteExpired
        );
        prop_assert_eq!(
            changes.iter().any(|c| c.kind() == SignalKind::CancellationRequested && c.as_raise().is_none()),
            ended || !change.cancel_at_period_end
        );
    }

    #[test]
    fn card_rules_decide_both_kinds_exactly_once(
        exp_month in 1u32..=12,
        exp_year in 2020i32..2035,
        days in 0i64..6000,
        is_default in any::<bool>(),
        detached in any::<bool>(),
    ) {
        let card = CardState { exp_month, exp_year, is_default, detached, ..card() };
        let today = day(2020, 1, 1) + TimeDelta::days(days);
        let changes = card_signals(&card, today, &RiskConfig::default()).unwrap();
        let kinds: Vec<_> = changes.iter().map(SignalChange::kind).collect();
        prop_assert_eq!(kinds.len(), 2);
        prop_assert!(kinds.contains(&SignalKind::CardExpiring) && kinds.contains(&SignalKind::CardExpired));
        let raises = changes.iter().filter(|c| c.as_raise().is_some()).count();
        prop_assert!(raises <= 1);
        if !is_default || detached {
            prop_assert_eq!(raises, 0);
        }
        prop_assert!(changes.iter().all(|c| c.cause_key() == &card.cause_key()));
        let through = card.valid_through().unwrap();
        prop_assert!(through.month() == exp_month);
        prop_assert!((through + TimeDelta::days(1)).day() == 1);
    }

    #[test]
    fn dispute_rules_decide_once(status in (0..DisputeStatus::ALL.len()).prop_map(|i| DisputeStatus::ALL[i])) {
        let changes = dispute_signals(&dispute(status));
        prop_assert_eq!(changes.len(), 1);
        prop_assert_eq!(changes[0].kind(), SignalKind::DisputeOpened);
    }

    #[test]
    fn alert_commands_never_panic(text in ".{0,80}") {
        if let Ok(draft) = parse_alert_command(&text) {
            let mut sorted = draft.kinds.clone();
            sorted.sort();
            sorted.dedup();
            prop_assert_eq!(sorted, draft.kinds);
        }
    }

    #[test]
    fn alert_commands_from_known_words_parse_or_explain(
        words in prop::collection::vec(
            prop::sample::select(vec![
                "payment", "failures", "and", "cards", "expiring", "critical", "for", "all",
                "accounts", "hourly", "disputes", "cancellations", "the", "my", "downgrades",
                "or", "high", "dunning", "everything", "acme",
            ]),
            0..8,
        )
    ) {
        let text = format!("alert me on {}", words.join(" "));
        match parse_alert_command(&text) {
            Ok(draft) => prop_assert!(!words.contains(&"acme"), "{}: {:?}", text, draft),
            Err(err) => prop_assert!(err.to_string().ends_with(ALERT_COMMAND_HELP)),
        }
    }

    #[test]
    fn revenue_at_risk_adds_up_and_is_order_independent(
        raw in prop::collection::vec(
            (0usize..6, prop::option::of(0usize..3), 0i64..1_000_000, currency(), prop::collection::vec(kind(), 0..3)),
            0..10,
        )
    ) {
        let accounts: Vec<AccountRisk> = raw
            .into_iter()
            .map(|(account, csm, mrr, currency, kinds)| AccountRisk {
                account_id: AccountId::new(format!("acc_{account}")),
                csm_user_id: csm.map(|c| format!("u_{c}")),
                mrr: MoneyByCurrency::try_sum([Money::new(mrr, currency)]).unwrap(),
                open_signal_kinds: kinds,
            })
            .collect();
        let risk = revenue_at_risk(&accounts).unwrap();
        let mut reversed = accounts.clone();
        reversed.reverse();
        prop_assert_eq!(&revenue_at_risk(&reversed).unwrap(), &risk);
        let mut from_csms = MoneyByCurrency::new();
        for csm in &risk.by_csm {
            from_csms.add_all(&csm.mrr).unwrap();
        }
        prop_assert_eq!(&from_csms, &risk.total);
        let mut from_accounts = MoneyByCurrency::new();
        for account in &risk.accounts {
            from_accounts.add_all(&account.mrr).unwrap();
            prop_assert!(!account.payment_signal_kinds.is_empty());
            prop_assert!(account.payment_signal_kinds.iter().all(|k| k.is_payment()));
        }
        prop_assert_eq!(&from_accounts, &risk.total);
        prop_assert_eq!(risk.by_csm.iter().map(|c| c.accounts).sum::<usize>(), risk.accounts.len());
    }
}
