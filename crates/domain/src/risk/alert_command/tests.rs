use super::*;

use SignalKind::*;

fn parse(text: &str) -> AlertRuleDraft {
    parse_alert_command(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn kinds(text: &str) -> Vec<SignalKind> {
    parse(text).kinds
}

#[test]
fn the_prd_command() {
    assert_eq!(
        parse("Alert me on payment failures"),
        AlertRuleDraft {
            kinds: vec![PaymentFailed],
            min_severity: Severity::Low,
            scope: AlertScope::Mine,
            digest: DigestMode::Immediate,
        }
    );
}

#[test]
fn the_briefed_examples() {
    assert_eq!(kinds("alert me when cards are expiring"), [CardExpiring]);
    let all = parse("alert me on cancellations for all accounts");
    assert_eq!(all.kinds, [CancellationRequested, SubscriptionCanceled]);
    assert_eq!(all.scope, AlertScope::Tenant);
    let critical = parse("alert me on critical payment failures");
    assert_eq!(critical.kinds, [PaymentFailed]);
    assert_eq!(critical.min_severity, Severity::Critical);
    assert_eq!(critical.scope, AlertScope::Mine);
}

#[test]
fn case_punctuation_and_plurals_do_not_matter() {
    for text in [
        "ALERT ME ON PAYMENT FAILURES!",
        "alert me on payment failure.",
        "Alert me about failed payments",
        "alert me when a payment fails",
        "Please alert me on failed charges",
        "notify me of declined payments",
        "let me know when payments fail",
        "tell me about payment failures, please",
        "alert me   on\tpayment\nfailures",
    ] {
        assert_eq!(kinds(text), [PaymentFailed], "{text:?}");
    }
}

#[test]
fn every_kind_has_a_phrase() {
    let cases: [(&str, &[SignalKind]); 16] = [
        ("alert me on dunning", &[DunningInProgress]),
        ("alert me when accounts go past due", &[DunningInProgress]),
        ("alert me on overdue invoices", &[DunningInProgress]),
        (
            "alert me when payment action is required",
            &[PaymentActionRequired],
        ),
        (
            "alert me when 3D Secure is required",
            &[PaymentActionRequired],
        ),
        (
            "alert me on 3-D Secure authentications",
            &[PaymentActionRequired],
        ),
        ("alert me on expired cards", &[CardExpired]),
        (
            "alert me on card expiry and expired cards",
            &[CardExpiring, CardExpired],
        ),
        ("alert me on card problems", &[CardExpiring, CardExpired]),
        ("alert me on downgrades", &[SubscriptionDowngrade]),
        (
            "alert me when a subscription is downgraded",
            &[SubscriptionDowngrade],
        ),
        (
            "alert me on cancellation requests",
            &[CancellationRequested],
        ),
        (
            "alert me when a customer asks to cancel",
            &[CancellationRequested],
        ),
        (
            "alert me when subscriptions are canceled",
            &[SubscriptionCanceled],
        ),
        ("alert me on chargebacks", &[DisputeOpened]),
        ("alert me on write-offs", &[InvoiceUncollectible]),
    ];
    for (text, expected) in cases {
        assert_eq!(kinds(text), expected, "{text:?}");
    }
    assert_eq!(
        kinds("alert me on uncollectible invoices"),
        [InvoiceUncollectible]
    );
    assert_eq!(kinds("alert me on disputes"), [DisputeOpened]);
    assert_eq!(
        kinds("alert me when someone churns"),
        [CancellationRequested, SubscriptionCanceled]
    );
    assert_eq!(
        kinds("alert me on churned subscriptions"),
        [SubscriptionCanceled]
    );
}

#[test]
fn several_subjects_and_groups() {
    assert_eq!(
        kinds("alert me on disputes and uncollectible invoices"),
        [DisputeOpened, InvoiceUncollectible]
    );
    assert_eq!(
        kinds("alert me on downgrades, cancellations & disputes"),
        [
            SubscriptionDowngrade,
            CancellationRequested,
            SubscriptionCanceled,
            DisputeOpened
        ]
    );
    assert_eq!(
        kinds("alert me on payment failures or dunning"),
        [PaymentFailed, DunningInProgress]
    );
    let payment_kinds: Vec<_> = SignalKind::ALL
        .into_iter()
        .filter(|k| k.is_payment())
        .collect();
    assert_eq!(kinds("alert me on billing issues"), payment_kinds);
    assert_eq!(kinds("alert me on payment problems"), payment_kinds);
    assert_eq!(kinds("alert me on payments"), payment_kinds);
    // Duplicates collapse; order is SignalKind order.
    assert_eq!(
        kinds("alert me on disputes and failed payments and disputes"),
        [PaymentFailed, DisputeOpened]
    );
}

#[test]
fn everything_means_every_kind() {
    for text in [
        "alert me on everything",
        "alert me on anything",
        "alert me on all signals",
        "alert me on any risk",
        "alert me on problems",
        "alert me on everything and disputes",
    ] {
        assert_eq!(kinds(text), [], "{text:?}");
    }
}

#[test]
fn severity_phrases() {
    let severity = |text| parse(text).min_severity;
    assert_eq!(
        severity("alert me on high severity disputes"),
        Severity::High
    );
    assert_eq!(
        severity("alert me on disputes of high priority"),
        Severity::High
    );
    assert_eq!(
        severity("alert me on urgent payment failures"),
        Severity::High
    );
    assert_eq!(
        severity("alert me on payment failures that are high or above"),
        Severity::High
    );
    assert_eq!(
        severity("alert me on at least medium downgrades"),
        Severity::Medium
    );
    assert_eq!(
        severity("alert me on critical everything"),
        Severity::Critical
    );
    assert_eq!(
        severity("alert me on disputes of any severity"),
        Severity::Low
    );
    assert_eq!(severity("alert me on disputes"), Severity::Low);
}

#[test]
fn scope_phrases() {
    let scope = |text| parse(text).scope;
    for tenant in [
        "alert me on disputes for all accounts",
        "alert me on disputes across all the accounts",
        "alert me on disputes for every account",
        "alert me when any account has a failed payment",
        "alert me on disputes for the whole team",
        "alert me on disputes company-wide",
        "alert me on disputes for everyone's accounts",
    ] {
        assert_eq!(scope(tenant), AlertScope::Tenant, "{tenant:?}");
    }
    for mine in [
        "alert me on disputes",
        "alert me on disputes for my accounts",
        "alert me on disputes on my book of business",
        "alert me on disputes of mine",
    ] {
        assert_eq!(scope(mine), AlertScope::Mine, "{mine:?}");
    }
}

#[test]
fn digest_phrases() {
    let digest = |text| parse(text).digest;
    for hourly in [
        "alert me on disputes hourly",
        "alert me on disputes in an hourly digest",
        "alert me on disputes once an hour",
        "alert me on disputes as a digest",
    ] {
        assert_eq!(digest(hourly), DigestMode::Hourly, "{hourly:?}");
    }
    for immediate in [
        "alert me on disputes",
        "alert me on disputes immediately",
        "alert me on disputes right away",
        "alert me on disputes in real time",
        "alert me on disputes as they happen",
    ] {
        assert_eq!(digest(immediate), DigestMode::Immediate, "{immediate:?}");
    }
}

#[test]
fn everything_together() {
    assert_eq!(
        parse("Alert me on critical payment failures and disputes for all accounts in an hourly digest"),
        AlertRuleDraft {
            kinds: vec![PaymentFailed, DisputeOpened],
            min_severity: Severity::Critical,
            scope: AlertScope::Tenant,
            digest: DigestMode::Hourly,
        }
    );
}

#[test]
fn not_an_alert_command() {
    for text in [
        "",
        "   ",
        "what's the billing status for Acme?",
        "show MRR for Acme",
        "don't alert me on payment failures",
        "alerts for disputes",
        "payment failures",
    ] {
        assert_eq!(
            parse_alert_command(text),
            Err(AlertCommandError::NotAnAlertCommand),
            "{text:?}"
        );
    }
}

#[test]
fn unknown_words_are_rejected_by_name() {
    assert_eq!(
        parse_alert_command("alert me on payment failures for Acme Corp"),
        Err(AlertCommandError::Unrecognised {
            words: vec!["acme".to_owned(), "corp".to_owned()]
        })
    );
    assert_eq!(
        parse_alert_command("alert me on everything except disputes"),
        Err(AlertCommandError::Unrecognised {
            words: vec!["except".to_owned()]
        })
    );
    assert_eq!(
        parse_alert_command("alert me on logins"),
        Err(AlertCommandError::Unrecognised {
            words: vec!["logins".to_owned()]
        })
    );
    assert!(matches!(
        parse_alert_command("alert me when nps drops"),
        Err(AlertCommandError::Unrecognised { .. })
    ));
}

#[test]
fn nothing_to_alert_on() {
    for text in [
        "alert me",
        "alert me please",
        "notify me on my accounts",
        "alert me on subscriptions",
        "alert me hourly",
    ] {
        assert_eq!(
            parse_alert_command(text),
            Err(AlertCommandError::NothingToAlertOn),
            "{text:?}"
        );
    }
}

#[test]
fn conflicting_settings_are_rejected() {
    assert_eq!(
        parse_alert_command("alert me on critical low disputes"),
        Err(AlertCommandError::Conflicting {
            what: "severity",
            first: "critical",
            second: "low"
        })
    );
    assert_eq!(
        parse_alert_command("alert me on disputes for my accounts and all accounts"),
        Err(AlertCommandError::Conflicting {
            what: "accounts",
            first: "all",
            second: "your"
        })
    );
    assert_eq!(
        parse_alert_command("alert me on disputes immediately in an hourly digest"),
        Err(AlertCommandError::Conflicting {
            what: "delivery",
            first: "hourly",
            second: "immediate"
        })
    );
    // Saying the same thing twice is fine.
    assert_eq!(
        parse("alert me on critical disputes, critical ones only").min_severity,
        Severity::Critical
    );
}

#[test]
fn error_messages_list_what_is_understood() {
    for err in [
        AlertCommandError::NotAnAlertCommand,
        AlertCommandError::NothingToAlertOn,
        AlertCommandError::Unrecognised {
            words: vec!["acme".to_owned()],
        },
        AlertCommandError::Conflicting {
            what: "severity",
            first: "high",
            second: "low",
        },
    ] {
        let message = err.to_string();
        assert!(message.ends_with(ALERT_COMMAND_HELP), "{message}");
        assert!(message.contains("payment failures"));
    }
    assert!(AlertCommandError::Unrecognised {
        words: vec!["acme".to_owned(), "corp".to_owned()]
    }
    .to_string()
    .starts_with("I did not understand \"acme\", \"corp\". "));
}

#[test]
fn every_example_in_the_help_parses() {
    let draft = parse("alert me on critical payment failures and disputes for all accounts");
    assert_eq!(draft.kinds, [PaymentFailed, DisputeOpened]);
}

#[test]
fn draft_becomes_a_rule_and_describes_itself() {
    let draft = parse("alert me on critical payment failures and disputes for all accounts hourly");
    assert_eq!(
        draft.describe(),
        "Alerting you on payment failures, disputes (critical or above) for all accounts, \
         in an hourly digest."
    );
    let rule = draft.clone().into_rule("u_ana");
    assert_eq!(rule.csm_user_id, "u_ana");
    assert_eq!(rule.kinds, draft.kinds);
    assert_eq!(rule.min_severity, Severity::Critical);
    assert_eq!(rule.scope, AlertScope::Tenant);
    assert_eq!(rule.digest, DigestMode::Hourly);
    assert_eq!(
        parse("alert me on everything").describe(),
        "Alerting you on every signal (any severity) for your accounts, immediately."
    );
}

#[test]
fn parsed_rules_match_what_they_say() {
    let rule = parse("alert me on high payment failures").into_rule("u_ana");
    assert!(super::super::rule_matches(
        &rule,
        PaymentFailed,
        Severity::High,
        Some("u_ana")
    ));
    assert!(!super::super::rule_matches(
        &rule,
        PaymentFailed,
        Severity::Medium,
        Some("u_ana")
    ));
    assert!(!super::super::rule_matches(
        &rule,
        PaymentFailed,
        Severity::High,
        Some("u_bob")
    ));
    assert!(!super::super::rule_matches(
        &rule,
        DisputeOpened,
        Severity::Critical,
        Some("u_ana")
    ));
}
