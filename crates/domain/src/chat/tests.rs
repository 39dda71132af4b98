use super::*;
use crate::risk::AlertCommandError;
use crate::risk::SignalKind;

fn accounts() -> Vec<KnownAccount> {
    [
        ("acc_acme", "Acme Corp"),
        ("acc_acme_labs", "Acme Labs"),
        ("acc_boa", "Bank of America"),
        ("acc_globex", "Globex, Inc."),
        ("acc_initech", "Initech GmbH"),
        ("acc_umbrella_us", "Umbrella"),
        ("acc_umbrella_eu", "Umbrella"),
        ("acc_revenue", "Revenue Labs"),
        ("acc_zoe", "Zoë Café SARL"),
        ("acc_att", "AT&T"),
        ("acc_billing_co", "The Billing Company"),
    ]
    .into_iter()
    .map(|(id, name)| KnownAccount {
        account_id: id.into(),
        name: name.into(),
    })
    .collect()
}

/// What `text` asks and which account id it resolves to.
fn ask(text: &str) -> (Question, Result<String, Vec<String>>) {
    let accounts = accounts();
    let ChatCommand::Ask { readings } =
        parse_chat(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    else {
        panic!("{text:?} is not a question");
    };
    match resolve_account(&readings, &accounts) {
        AccountResolution::Found { reading, account } => {
            (reading.question, Ok(account.account_id.clone()))
        }
        AccountResolution::Ambiguous { reading, choices } => (
            reading.question,
            Err(choices.iter().map(|a| a.account_id.clone()).collect()),
        ),
        AccountResolution::Unknown { reading } => (reading.question, Err(Vec::new())),
    }
}

#[test]
fn the_prds_four_commands_and_their_paraphrases() {
    use Question::*;
    let table: &[(&str, Question, &str)] = &[
        // Billing status.
        (
            "What's the billing status for Acme Corp?",
            BillingStatus,
            "acc_acme",
        ),
        (
            "what is the billing status for acme corp",
            BillingStatus,
            "acc_acme",
        ),
        (
            "What’s the billing status of Acme Corp?",
            BillingStatus,
            "acc_acme",
        ),
        ("billing status Acme Corp", BillingStatus, "acc_acme"),
        ("Acme Corp billing status", BillingStatus, "acc_acme"),
        ("How is Acme Corp doing?", BillingStatus, "acc_acme"),
        ("How's Acme Corp's billing?", BillingStatus, "acc_acme"),
        (
            "Show me the billing health of Globex",
            BillingStatus,
            "acc_globex",
        ),
        (
            "billing overview for globex inc",
            BillingStatus,
            "acc_globex",
        ),
        (
            "Give me a billing summary for Initech",
            BillingStatus,
            "acc_initech",
        ),
        (
            "status of billing for Initech GmbH",
            BillingStatus,
            "acc_initech",
        ),
        (
            "Is Bank of America in good standing?",
            BillingStatus,
            "acc_boa",
        ),
        (
            "What's the status for the Acme Corp account?",
            BillingStatus,
            "acc_acme",
        ),
        ("billing status for acc_globex", BillingStatus, "acc_globex"),
        (
            "What's the billing status for The Billing Company?",
            BillingStatus,
            "acc_billing_co",
        ),
        // Failed payments.
        (
            "Any failed payments for Acme Corp?",
            FailedPayments,
            "acc_acme",
        ),
        (
            "any failed payments for acme corp lately",
            FailedPayments,
            "acc_acme",
        ),
        (
            "Did Globex have failed payments?",
            FailedPayments,
            "acc_globex",
        ),
        (
            "Has Globex had any payment failures?",
            FailedPayments,
            "acc_globex",
        ),
        (
            "Were there declined charges for Initech?",
            FailedPayments,
            "acc_initech",
        ),
        (
            "Show failed invoices for Bank of America",
            FailedPayments,
            "acc_boa",
        ),
        ("Is Acme Corp past due?", FailedPayments, "acc_acme"),
        ("overdue invoices at AT&T", FailedPayments, "acc_att"),
        ("Is Acme Corp in dunning?", FailedPayments, "acc_acme"),
        ("payment failures: Zoe Cafe", FailedPayments, "acc_zoe"),
        (
            "unpaid invoices for Acme Corp in the last 30 days",
            FailedPayments,
            "acc_acme",
        ),
        ("Globex failed payments", FailedPayments, "acc_globex"),
        // MRR.
        ("Show MRR for Acme Corp", Mrr, "acc_acme"),
        ("show mrr for acme corp.", Mrr, "acc_acme"),
        ("What is Acme Corp's MRR?", Mrr, "acc_acme"),
        ("MRR of Bank of America", Mrr, "acc_boa"),
        ("What's the ARR for Globex?", Mrr, "acc_globex"),
        ("How much is Initech paying?", Mrr, "acc_initech"),
        ("How much does Initech pay us per month", Mrr, "acc_initech"),
        ("monthly recurring revenue for Zoë Café", Mrr, "acc_zoe"),
        ("Tell me the MRR for Acme Corp", Mrr, "acc_acme"),
        ("mrr acme corp", Mrr, "acc_acme"),
        ("Revenue Labs' MRR", Mrr, "acc_revenue"),
        (
            "What's the billing status for Revenue Labs?",
            BillingStatus,
            "acc_revenue",
        ),
    ];
    let wrong: Vec<String> = table
        .iter()
        .filter_map(|(text, question, account)| {
            let got = ask(text);
            (got != (*question, Ok((*account).to_owned())))
                .then(|| format!("{text:?}: {got:?}, want {question:?} {account}"))
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn alert_commands_are_rules_not_questions() {
    let ChatCommand::Alert(draft) = parse_chat("Alert me on payment failures").unwrap() else {
        panic!("not an alert");
    };
    assert_eq!(draft.kinds, vec![SignalKind::PaymentFailed]);
    assert!(matches!(
        parse_chat("notify me about expiring cards for all accounts"),
        Ok(ChatCommand::Alert(_))
    ));
    // An alert command it cannot read keeps the alert parser's explanation.
    assert!(matches!(
        parse_chat("alert me on moon phases"),
        Err(ChatError::Alert(AlertCommandError::Unrecognised { .. }))
    ));
}

#[test]
fn a_name_several_accounts_share_is_a_choice() {
    assert_eq!(
        ask("Show MRR for Acme").1,
        Err(vec!["acc_acme".into(), "acc_acme_labs".into()])
    );
    assert_eq!(
        ask("billing status for umbrella").1,
        Err(vec!["acc_umbrella_eu".into(), "acc_umbrella_us".into()])
    );
}

#[test]
fn a_close_misspelling_is_found_an_unrelated_name_is_unknown() {
    assert_eq!(ask("Show MRR for Globexx").1, Ok("acc_globex".into()));
    assert_eq!(
        ask("failed payments for Inittech").1,
        Ok("acc_initech".into())
    );
    assert_eq!(ask("Show MRR for Hooli").1, Err(Vec::new()));
    assert_eq!(
        ask("Any failed payments for Soylent?").0,
        Question::FailedPayments
    );
}

#[test]
fn what_is_not_a_command_says_so() {
    assert_eq!(parse_chat(""), Err(ChatError::Empty));
    assert_eq!(parse_chat(" ?! "), Err(ChatError::Empty));
    assert_eq!(parse_chat("hello there"), Err(ChatError::NotUnderstood));
    assert_eq!(parse_chat("Acme Corp"), Err(ChatError::NotUnderstood));
    assert_eq!(
        parse_chat("What's the billing status?"),
        Err(ChatError::NoAccount(Question::BillingStatus))
    );
    assert_eq!(
        parse_chat("show mrr"),
        Err(ChatError::NoAccount(Question::Mrr))
    );
    assert_eq!(parse_chat(&"mrr ".repeat(200)), Err(ChatError::TooLong));
    let message = ChatError::NoAccount(Question::FailedPayments).to_string();
    assert!(
        message.contains("Any failed payments for Acme Corp"),
        "{message}"
    );
}

#[test]
fn candidates_prefer_the_strongest_level() {
    let accounts = accounts();
    let ids = |typed: &str| {
        account::candidates(typed, &accounts)
            .iter()
            .map(|a| a.account_id.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids("acc_boa"), vec!["acc_boa"]);
    assert_eq!(ids("GLOBEX"), vec!["acc_globex"]);
    assert_eq!(ids("initech"), vec!["acc_initech"]);
    assert_eq!(ids("zoe cafe"), vec!["acc_zoe"]);
    assert_eq!(ids("Acme"), vec!["acc_acme", "acc_acme_labs"]);
    assert_eq!(ids("Acme Corp"), vec!["acc_acme"]);
    assert_eq!(ids("bank"), vec!["acc_boa"]);
    assert!(ids("").is_empty());
    assert!(ids("inc").is_empty());
    assert!(ids("Wayne Enterprises").is_empty());
}

#[test]
fn parsing_never_panics_on_odd_text() {
    for text in [
        "'s",
        "''''",
        "’s mrr",
        "mrr for 's",
        "mrr for for for",
        "status of of",
        "🙂 mrr for 🙂",
        "MRR\tfor\nAcme",
        "s' mrr",
        "how much",
        "how much for",
    ] {
        let _ = parse_chat(text);
    }
    assert_eq!(ask("MRR\tfor\nAcme Corp").1, Ok("acc_acme".into()));
}
