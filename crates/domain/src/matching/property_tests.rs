//! Invariants of matching, checked on generated inputs.

use proptest::prelude::*;

use super::*;

const WORDS: &[&str] = &[
    "acme",
    "labs",
    "global",
    "software",
    "société",
    "générale",
    "müller",
    "payments",
    "paymnets",
    "northwind",
    "initech",
    "globex",
    "inc",
    "ltd",
    "gmbh",
    "s.a.",
    "co",
    "&",
    "the",
    "holdings",
];
const DOMAINS: &[&str] = &[
    "acme.com",
    "eu.acme.com",
    "acme.co.uk",
    "globex.io",
    "initech.de",
    "northwind.com",
    "gmail.com",
    "yahoo.fr",
    "mailinator.com",
    "not a domain",
];
const FREE_MAIL: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "yahoo.co.jp",
    "outlook.com",
    "hotmail.fr",
    "live.co.uk",
    "icloud.com",
    "me.com",
    "proton.me",
    "gmx.de",
    "web.de",
    "mail.ru",
    "yandex.ru",
    "qq.com",
    "163.com",
    "naver.com",
    "zoho.com",
    "fastmail.com",
    "hey.com",
    "aol.com",
    "tutanota.com",
    "privaterelay.appleid.com",
    "mailinator.com",
    "yopmail.fr",
];

fn name() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(WORDS), 0..4).prop_map(|w| w.join(" "))
}

fn account() -> impl Strategy<Value = AccountCandidate> {
    (
        0..12u8,
        name(),
        prop::collection::vec(prop::sample::select(DOMAINS), 0..3),
        prop::collection::vec(prop::sample::select(&["ext_1", "ext_2", "acc_3"][..]), 0..2),
    )
        .prop_map(|(id, name, domains, external)| AccountCandidate {
            id: AccountId::new(format!("acc_{id}")),
            name,
            domains: domains.into_iter().map(str::to_owned).collect(),
            external_ids: external.into_iter().map(str::to_owned).collect(),
        })
}

fn evidence() -> impl Strategy<Value = CustomerEvidence> {
    (
        prop::option::of(prop::sample::select(
            &["acc_1", "acc_3", "ext_1", "ext_2", "acc_99"][..],
        )),
        prop::option::of(prop::sample::select(DOMAINS)),
        prop::collection::vec(prop::sample::select(DOMAINS), 0..2),
        prop::option::of(name()),
    )
        .prop_map(|(meta, email, invoice, name)| CustomerEvidence {
            metadata: meta
                .map(|id| [("cscx_account_id".to_owned(), id.to_owned())].into())
                .unwrap_or_default(),
            email: email.map(|d| format!("someone@{d}")),
            invoice_emails: invoice.into_iter().map(|d| format!("ap@{d}")).collect(),
            name,
            ..CustomerEvidence::default()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn decisions_do_not_depend_on_account_order(
        (accounts, shuffled) in prop::collection::vec(account(), 0..8)
            .prop_flat_map(|a| (Just(a.clone()), Just(a).prop_shuffle())),
        customer in evidence(),
    ) {
        let config = MatchConfig::default();
        let mut reversed = accounts.clone();
        reversed.reverse();
        let expected = decide(&customer, &accounts, &config);
        prop_assert_eq!(&decide(&customer, &shuffled, &config), &expected);
        prop_assert_eq!(&decide(&customer, &reversed, &config), &expected);
    }

    #[test]
    fn company_name_normalisation_is_idempotent(raw in "\\PC{0,40}") {
        let once = normalize_company_name(&raw);
        prop_assert_eq!(normalize_company_name(&once), once.clone());
    }

    #[test]
    fn company_name_normalisation_is_idempotent_on_company_like_names(raw in name()) {
        let once = normalize_company_name(&raw);
        prop_assert_eq!(normalize_company_name(&once), once.clone());
    }

    #[test]
    fn similarity_is_symmetric_and_bounded(
        a in prop_oneof![name(), "\\PC{0,20}"],
        b in prop_oneof![name(), "\\PC{0,20}"],
    ) {
        let ab = company_name_similarity(&a, &b);
        let ba = company_name_similarity(&b, &a);
        prop_assert!((0.0..=1.0).contains(&ab), "{}", ab);
        prop_assert_eq!(ab.to_bits(), ba.to_bits());
        if !CompanyName::new(&a).is_empty() {
            prop_assert_eq!(company_name_similarity(&a, &a), 1.0);
        }
    }

    #[test]
    fn free_mail_never_produces_an_email_domain_link(
        local in "[a-z0-9.]{1,10}",
        provider in prop::sample::select(FREE_MAIL),
        sub in prop::option::of("[a-z]{1,6}"),
        upper in any::<bool>(),
        accounts in prop::collection::vec(account(), 0..6),
        name in prop::option::of(name()),
    ) {
        let host = match sub { Some(sub) => format!("{sub}.{provider}"), None => provider.to_owned() };
        let mut email = format!("{local}@{host}");
        if upper { email = email.to_uppercase(); }
        // Even accounts that list the provider's domain must not attract it.
        let mut accounts = accounts;
        accounts.push(AccountCandidate {
            id: AccountId::from("acc_provider"),
            name: "Provider".into(),
            domains: vec![provider.to_owned(), format!("https://www.{provider}/")],
            external_ids: Vec::new(),
        });
        let customer = CustomerEvidence {
            email: Some(email.clone()),
            invoice_emails: vec![email.clone()],
            name,
            ..CustomerEvidence::default()
        };
        let decision = decide(&customer, &accounts, &MatchConfig::default());
        if let Some(link) = decision.link() {
            prop_assert_ne!(link.method, MatchMethod::EmailDomain, "{:?}", decision);
        }
        if let MatchDecision::Ambiguous { candidates, .. } = &decision {
            prop_assert!(candidates.iter().all(|c| c.method != MatchMethod::EmailDomain));
        }
        prop_assert!(!matches!(classify_email(&email), EmailDomainClass::Business(_)));
    }

    #[test]
    fn confidences_stay_in_range_and_below_email_for_names(
        accounts in prop::collection::vec(account(), 0..8),
        customer in evidence(),
    ) {
        let config = MatchConfig::default();
        match decide(&customer, &accounts, &config) {
            MatchDecision::Matched(link) => {
                prop_assert!((0.0..=1.0).contains(&link.confidence));
                prop_assert!(!link.evidence.is_empty());
                if link.method == MatchMethod::CompanyName {
                    prop_assert!(link.confidence < config.invoice_email_domain_confidence);
                }
            }
            MatchDecision::Ambiguous { candidates, .. } => prop_assert!(candidates.len() >= 2),
            MatchDecision::Unmatched { reason } => prop_assert!(!reason.is_empty()),
        }
    }

    #[test]
    fn email_parsing_never_panics(raw in "\\PC{0,40}") {
        let _ = classify_email(&raw);
        let _ = normalize_website(&raw);
    }
}
