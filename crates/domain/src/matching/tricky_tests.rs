//! Hand-written cases that other sync tools get wrong.

use super::*;

fn account(id: &str, name: &str, domains: &[&str]) -> AccountCandidate {
    AccountCandidate {
        id: AccountId::from(id),
        name: name.to_owned(),
        domains: domains.iter().map(|d| (*d).to_owned()).collect(),
        external_ids: Vec::new(),
    }
}

fn customer(email: Option<&str>, name: Option<&str>) -> CustomerEvidence {
    CustomerEvidence {
        email: email.map(str::to_owned),
        name: name.map(str::to_owned),
        ..CustomerEvidence::default()
    }
}

fn tenant() -> Vec<AccountCandidate> {
    vec![
        account("acc_acme", "Acme Inc", &["acme.com"]),
        account("acc_acme_labs", "Acme Labs", &["acmelabs.io"]),
        account("acc_socgen", "Société Générale SA", &["societegenerale.fr"]),
        account("acc_initrode", "Initrode", &["initrode.com"]),
        account("acc_uk", "Britco Ltd", &["britco.co.uk"]),
        account("acc_shared_a", "Northwind Traders", &["northwind.com"]),
        account("acc_shared_b", "Northwind Logistics", &["northwind.com"]),
        // A CSM typed a contact's free-mail domain into the account.
        account("acc_freemail", "Solo Consulting", &["gmail.com"]),
    ]
}

#[test]
fn two_customers_at_gmail_never_auto_link() {
    let index = AccountIndex::build(&tenant());
    let config = MatchConfig::default();
    for email in [
        "alice@gmail.com",
        "bob@gmail.com",
        "carol@GMAIL.com",
        "dan@googlemail.com",
    ] {
        let decision = index.decide(&customer(Some(email), None), &config);
        assert!(
            matches!(&decision, MatchDecision::Unmatched { reason } if reason.contains("free-mail")),
            "{email}: {decision:?}"
        );
    }
}

#[test]
fn subsidiary_subdomains_fold_to_the_parent_domain() {
    let index = AccountIndex::build(&tenant());
    let config = MatchConfig::default();
    for email in ["ops@eu.acme.com", "ap@billing.acme.com", "x@a.b.acme.com"] {
        let decision = index.decide(&customer(Some(email), None), &config);
        let link = decision
            .link()
            .unwrap_or_else(|| panic!("{email}: {decision:?}"));
        assert_eq!(link.account_id.as_str(), "acc_acme");
        assert_eq!(link.method, MatchMethod::EmailDomain);
    }
    let decision = index.decide(&customer(Some("ap@eu.britco.co.uk"), None), &config);
    assert_eq!(decision.account_id().unwrap().as_str(), "acc_uk");
}

#[test]
fn renamed_company_still_links_by_domain_not_by_old_name() {
    // Initrode renamed itself "Initech"; its Stripe customer kept the old
    // email domain but carries the new name.
    let index = AccountIndex::build(&tenant());
    let decision = index.decide(
        &customer(Some("billing@initrode.com"), Some("Initech Global")),
        &MatchConfig::default(),
    );
    assert_eq!(decision.account_id().unwrap().as_str(), "acc_initrode");
    // Name alone (new name, free-mail email) is not enough: no guess.
    let decision = index.decide(
        &customer(Some("cfo@gmail.com"), Some("Initech Global")),
        &MatchConfig::default(),
    );
    assert!(
        matches!(decision, MatchDecision::Unmatched { .. }),
        "{decision:?}"
    );
}

#[test]
fn acme_inc_and_acme_labs_are_told_apart() {
    let index = AccountIndex::build(&tenant());
    let config = MatchConfig::default();
    for (name, expected) in [
        ("Acme Inc", "acc_acme"),
        ("ACME, Inc.", "acc_acme"),
        ("acme incorporated", "acc_acme"),
        ("Acme Labs", "acc_acme_labs"),
        ("ACME LABS LLC", "acc_acme_labs"),
    ] {
        let decision = index.decide(&customer(None, Some(name)), &config);
        let link = decision
            .link()
            .unwrap_or_else(|| panic!("{name}: {decision:?}"));
        assert_eq!(link.account_id.as_str(), expected, "{name}");
        assert_eq!(link.method, MatchMethod::CompanyName);
    }
    assert_eq!(company_name_similarity("Acme Inc", "ACME, Inc."), 1.0);
    assert!(company_name_similarity("Acme Labs", "Acme Inc") < 0.7);
}

#[test]
fn non_ascii_names_match_their_ascii_spelling() {
    let index = AccountIndex::build(&tenant());
    let decision = index.decide(
        &customer(None, Some("Societe Generale")),
        &MatchConfig::default(),
    );
    assert_eq!(decision.account_id().unwrap().as_str(), "acc_socgen");
    assert_eq!(
        company_name_similarity("Société Générale SA", "Societe Generale"),
        1.0
    );
    assert_eq!(company_name_similarity("Müller GmbH", "MULLER"), 1.0);
}

#[test]
fn reseller_paid_account_is_unmatched_or_name_based() {
    let index = AccountIndex::build(&tenant());
    let config = MatchConfig::default();
    // The reseller's email domain belongs to no account.
    let decision = index.decide(&customer(Some("ap@reseller.com"), None), &config);
    assert!(
        matches!(&decision, MatchDecision::Unmatched { reason }
            if reason.contains("reseller.com belongs to no account")),
        "{decision:?}"
    );
    // With the end customer's name, the name rule may link, below email strength.
    let decision = index.decide(
        &customer(Some("ap@reseller.com"), Some("Acme Inc.")),
        &config,
    );
    let link = decision.link().expect("name-based link");
    assert_eq!(link.account_id.as_str(), "acc_acme");
    assert_eq!(link.method, MatchMethod::CompanyName);
    assert!(link.confidence < config.email_domain_confidence);
}

#[test]
fn metadata_id_of_an_unknown_account_is_not_a_match_and_says_so() {
    let index = AccountIndex::build(&tenant());
    let mut evidence = customer(None, None);
    evidence
        .metadata
        .insert("cscx_account_id".into(), "acc_deleted".into());
    let decision = index.decide(&evidence, &MatchConfig::default());
    let MatchDecision::Unmatched { reason } = decision else {
        panic!("{decision:?}")
    };
    assert!(
        reason.contains("cscx_account_id = acc_deleted names no account"),
        "{reason}"
    );

    // A weaker rule may still link, and the link carries the warning.
    evidence.email = Some("x@acme.com".into());
    let decision = index.decide(&evidence, &MatchConfig::default());
    let link = decision.link().expect("email link");
    assert_eq!(link.method, MatchMethod::EmailDomain);
    assert!(link
        .evidence
        .iter()
        .any(|e| e.contains("acc_deleted names no account")));
}

#[test]
fn two_accounts_sharing_a_domain_are_ambiguous() {
    let index = AccountIndex::build(&tenant());
    let decision = index.decide(
        &customer(Some("ops@northwind.com"), Some("Northwind Traders")),
        &MatchConfig::default(),
    );
    let MatchDecision::Ambiguous { candidates, reason } = decision else {
        panic!("{decision:?}")
    };
    let ids: Vec<&str> = candidates.iter().map(|c| c.account_id.as_str()).collect();
    assert_eq!(ids, ["acc_shared_a", "acc_shared_b"]);
    assert!(candidates
        .iter()
        .all(|c| c.method == MatchMethod::EmailDomain));
    assert!(reason.contains("northwind.com"), "{reason}");
}

#[test]
fn an_account_listing_a_free_mail_domain_never_attracts_gmail_customers() {
    let index = AccountIndex::build(&tenant());
    assert!(index
        .ignored_domains()
        .iter()
        .any(|d| d.account_id.as_str() == "acc_freemail" && d.reason.contains("free-mail")));
    let decision = index.decide(
        &customer(Some("anyone@gmail.com"), None),
        &MatchConfig::default(),
    );
    assert!(decision.link().is_none(), "{decision:?}");
}

#[test]
fn same_name_accounts_are_ambiguous_not_guessed() {
    let index = AccountIndex::build(&[
        account("acc_a", "Acme Inc", &[]),
        account("acc_b", "ACME Corporation", &[]),
    ]);
    let decision = index.decide(&customer(None, Some("Acme")), &MatchConfig::default());
    assert!(
        matches!(decision, MatchDecision::Ambiguous { ref candidates, .. } if candidates.len() == 2),
        "{decision:?}"
    );
}

#[test]
fn disposable_email_does_not_link() {
    let index = AccountIndex::build(&[account("acc_m", "Mailinator", &["mailinator.com"])]);
    let decision = index.decide(
        &customer(Some("x@mailinator.com"), None),
        &MatchConfig::default(),
    );
    assert!(
        matches!(decision, MatchDecision::Unmatched { ref reason } if reason.contains("disposable")),
        "{decision:?}"
    );
}

#[test]
fn several_customers_may_link_to_one_account() {
    let index = AccountIndex::build(&tenant());
    let config = MatchConfig::default();
    let a = index.decide(&customer(Some("a@acme.com"), None), &config);
    let b = index.decide(&customer(Some("b@eu.acme.com"), None), &config);
    assert_eq!(a.account_id(), b.account_id());
}
