//! The matching rules, strongest first. [`decide`] runs them in order and
//! stops at the first that links or finds an ambiguity:
//!
//! 1. [`metadata_rule`]: a configured metadata key (default
//!    `cscx_account_id`, then `customer_id`) holds an account id or one of an
//!    account's external ids → confidence 1.0. An id that names no account
//!    is not a match; it is reported and the weaker rules run.
//! 2. [`email_domain_rule`]: the registrable domain of the customer's email
//!    is an account domain → `email_domain_confidence` (0.95); failing that,
//!    that of an invoice/billing email → `invoice_email_domain_confidence`
//!    (0.9). Free-mail and disposable domains are never used, neither on the
//!    customer's side nor on the account's.
//! 3. [`company_name_rule`]: the best company-name similarity reaches
//!    `name_threshold` (0.92) → confidence `similarity × name_max_confidence`
//!    (≤ 0.85), always below an email-domain link.
//!
//! Several accounts for one rule are never guessed between: two accounts
//! named by metadata, a domain listed by two accounts, or two name scores
//! within `ambiguity_margin` give [`MatchDecision::Ambiguous`].

use std::collections::{BTreeMap, HashMap};

use super::company_name::CompanyName;
use super::decision::{
    AccountCandidate, CustomerEvidence, Link, MatchDecision, MatchMethod, ScoredCandidate,
};
use super::email::{email_host, EmailDomainClass};
use super::index::AccountIndex;
use super::MatchConfig;

/// What one rule concluded.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleOutcome {
    /// The rule links the customer to one account.
    Matched(Link),
    /// The rule found several accounts it cannot tell apart.
    Ambiguous {
        /// The accounts in contention, best first, then by id.
        candidates: Vec<ScoredCandidate>,
        /// Why.
        reason: String,
    },
    /// The rule found nothing; weaker rules may still.
    NoMatch {
        /// What the rule saw, for the review list.
        reason: String,
        /// Anything a reviewer should know even if a weaker rule links
        /// (e.g. a metadata id that names no account).
        warnings: Vec<String>,
    },
}

/// Matches one Stripe customer against a tenant's accounts. Builds an
/// [`AccountIndex`] first: to match many customers of one tenant, build the
/// index once and call [`AccountIndex::decide`].
pub fn decide(
    customer: &CustomerEvidence,
    accounts: &[AccountCandidate],
    config: &MatchConfig,
) -> MatchDecision {
    AccountIndex::build(accounts).decide(customer, config)
}

type Rule = fn(&AccountIndex, &CustomerEvidence, &MatchConfig) -> RuleOutcome;

pub(crate) fn decide_with_index(
    index: &AccountIndex,
    customer: &CustomerEvidence,
    config: &MatchConfig,
) -> MatchDecision {
    const RULES: [Rule; 3] = [metadata_rule, email_domain_rule, company_name_rule];
    let mut reasons = Vec::new();
    let mut warnings = Vec::new();
    for rule in RULES {
        match rule(index, customer, config) {
            RuleOutcome::Matched(mut link) => {
                link.evidence.extend(warnings);
                return MatchDecision::Matched(link);
            }
            RuleOutcome::Ambiguous { candidates, reason } => {
                let reason = std::iter::once(reason)
                    .chain(warnings)
                    .collect::<Vec<_>>()
                    .join("; ");
                return MatchDecision::Ambiguous { candidates, reason };
            }
            RuleOutcome::NoMatch {
                reason,
                warnings: new,
            } => {
                reasons.push(reason);
                warnings.extend(new);
            }
        }
    }
    MatchDecision::Unmatched {
        reason: reasons.join("; "),
    }
}

/// Rule 1: an account id (or external id) in the customer's metadata.
pub fn metadata_rule(
    index: &AccountIndex,
    customer: &CustomerEvidence,
    config: &MatchConfig,
) -> RuleOutcome {
    // Account position → evidence lines, in key order.
    let mut hits: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    let mut unknown = Vec::new();
    for wanted in &config.metadata_keys {
        let wanted = wanted.trim();
        for (key, value) in &customer.metadata {
            let value = value.trim();
            if !key.trim().eq_ignore_ascii_case(wanted) || value.is_empty() {
                continue;
            }
            let found = index.by_id_or_external_id(value);
            if found.is_empty() {
                unknown.push(format!(
                    "metadata.{key} = {value} names no account of this tenant"
                ));
            }
            for position in found {
                let line = if index.is_account_id(value, position) {
                    format!("metadata.{key} = {value}")
                } else {
                    format!(
                        "metadata.{key} = {value} is an external id of account {}",
                        index.account(position).id
                    )
                };
                let lines = hits.entry(position).or_default();
                if !lines.contains(&line) {
                    lines.push(line);
                }
            }
        }
    }
    match hits.len() {
        0 => RuleOutcome::NoMatch {
            reason: if unknown.is_empty() {
                format!(
                    "no account id in metadata ({})",
                    config.metadata_keys.join(", ")
                )
            } else {
                format!("{} (ignored)", unknown.join("; "))
            },
            warnings: unknown,
        },
        1 => {
            let (position, mut evidence) = hits.into_iter().next().expect("one hit");
            evidence.extend(unknown);
            RuleOutcome::Matched(Link {
                account_id: index.account(position).id.clone(),
                method: MatchMethod::MetadataId,
                confidence: 1.0,
                evidence,
            })
        }
        _ => {
            let lines: Vec<String> = hits.values().flatten().cloned().collect();
            RuleOutcome::Ambiguous {
                candidates: candidates(
                    index,
                    hits.keys().map(|&p| (p, 1.0)),
                    MatchMethod::MetadataId,
                ),
                reason: format!("metadata names several accounts: {}", lines.join("; ")),
            }
        }
    }
}

/// Rule 2: the business email domain of the customer's email, then of its
/// invoice/billing emails, is an account domain.
pub fn email_domain_rule(
    index: &AccountIndex,
    customer: &CustomerEvidence,
    config: &MatchConfig,
) -> RuleOutcome {
    let mut notes = Vec::new();
    match customer
        .email
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        None => notes.push("no customer email".to_owned()),
        Some(email) => {
            let mut hits = BTreeMap::new();
            lookup_email(index, email, "customer email", &mut hits, &mut notes);
            if let Some(outcome) = email_outcome(index, hits, config.email_domain_confidence) {
                return outcome;
            }
        }
    }
    let mut hits = BTreeMap::new();
    let mut seen = Vec::new();
    for email in customer
        .invoice_emails
        .iter()
        .map(|e| e.trim())
        .filter(|e| !e.is_empty())
    {
        if !seen.contains(&email) {
            seen.push(email);
            lookup_email(index, email, "invoice email", &mut hits, &mut notes);
        }
    }
    if let Some(outcome) = email_outcome(index, hits, config.invoice_email_domain_confidence) {
        return outcome;
    }
    RuleOutcome::NoMatch {
        reason: notes.join("; "),
        warnings: Vec::new(),
    }
}

/// Adds the accounts whose domain is the business domain of `email` to
/// `hits`, or says in `notes` why there are none.
fn lookup_email(
    index: &AccountIndex,
    email: &str,
    source: &str,
    hits: &mut BTreeMap<usize, Vec<String>>,
    notes: &mut Vec<String>,
) {
    let host = match email_host(email) {
        Ok(host) => host,
        Err(err) => {
            notes.push(format!("{source} unusable: {err}"));
            return;
        }
    };
    let domain = match super::email::classify_domain(&host) {
        EmailDomainClass::Business(domain) => domain,
        EmailDomainClass::FreeMail(domain) => {
            notes.push(format!("{source} domain {domain} is free-mail (not used)"));
            return;
        }
        EmailDomainClass::Disposable(domain) => {
            notes.push(format!("{source} domain {domain} is disposable (not used)"));
            return;
        }
        EmailDomainClass::Invalid(err) => {
            notes.push(format!("{source} unusable: {err}"));
            return;
        }
    };
    let accounts = index.by_domain(&domain);
    if accounts.is_empty() {
        notes.push(format!("{source} domain {domain} belongs to no account"));
    }
    let line = if host == domain.as_str() {
        format!("{source} domain {domain} matches account domain {domain}")
    } else {
        format!("{source} domain {host} folds to {domain}, which matches account domain {domain}")
    };
    for &position in accounts {
        let lines = hits.entry(position).or_default();
        if !lines.contains(&line) {
            lines.push(line.clone());
        }
    }
}

fn email_outcome(
    index: &AccountIndex,
    hits: BTreeMap<usize, Vec<String>>,
    confidence: f64,
) -> Option<RuleOutcome> {
    match hits.len() {
        0 => None,
        1 => {
            let (position, evidence) = hits.into_iter().next().expect("one hit");
            Some(RuleOutcome::Matched(Link {
                account_id: index.account(position).id.clone(),
                method: MatchMethod::EmailDomain,
                confidence,
                evidence,
            }))
        }
        _ => {
            let mut lines: Vec<String> = hits.values().flatten().cloned().collect();
            lines.sort();
            lines.dedup();
            Some(RuleOutcome::Ambiguous {
                candidates: candidates(
                    index,
                    hits.keys().map(|&p| (p, confidence)),
                    MatchMethod::EmailDomain,
                ),
                reason: format!(
                    "email domains point at {} accounts: {}",
                    hits.len(),
                    lines.join("; ")
                ),
            })
        }
    }
}

/// Rule 3: the customer's company name is similar enough to exactly one
/// account's name.
pub fn company_name_rule(
    index: &AccountIndex,
    customer: &CustomerEvidence,
    config: &MatchConfig,
) -> RuleOutcome {
    let mut names: Vec<(&str, &str)> = Vec::new();
    let sources = [
        ("business_name", customer.business_name.as_deref(), true),
        ("name", customer.name.as_deref(), true),
        (
            "description",
            customer.description.as_deref(),
            config.use_description_as_name,
        ),
    ];
    for (label, raw, used) in sources {
        if let (Some(raw), true) = (raw, used) {
            if !CompanyName::new(raw).is_empty() {
                names.push((label, raw));
            }
        }
    }
    if names.is_empty() {
        return RuleOutcome::NoMatch {
            reason: "no company name".to_owned(),
            warnings: Vec::new(),
        };
    }
    let floor = (config.name_threshold - config.ambiguity_margin).max(0.0);
    // Account position → (best score, evidence line).
    let mut best: HashMap<usize, (f64, String)> = HashMap::new();
    for (label, raw) in &names {
        let name = CompanyName::new(raw);
        for position in index.name_candidates(&name, floor) {
            for (account_raw, account_name) in &index.account(position).names {
                let score = name.similarity(account_name);
                let better = best.get(&position).is_none_or(|(s, _)| score > *s);
                if better {
                    let line = format!(
                        "company {label} {raw:?} ~ account name {account_raw:?} \
                         (normalised {:?} / {:?}, similarity {score:.3})",
                        name.normalized(),
                        account_name.normalized()
                    );
                    best.insert(position, (score, line));
                }
            }
        }
    }
    let mut scored: Vec<(usize, f64, String)> = best
        .into_iter()
        .map(|(p, (score, line))| (p, score, line))
        .collect();
    scored.sort_by(|a, b| {
        b.1.partial_cmp(&a.1)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| index.account(a.0).id.cmp(&index.account(b.0).id))
    });
    let shown: Vec<String> = names
        .iter()
        .map(|(label, raw)| format!("{label} {raw:?}"))
        .collect();
    let Some((top, top_score, top_line)) = scored.first().cloned() else {
        return RuleOutcome::NoMatch {
            reason: format!("no account name resembles company {}", shown.join(" / ")),
            warnings: Vec::new(),
        };
    };
    if top_score < config.name_threshold {
        return RuleOutcome::NoMatch {
            reason: format!(
                "best company-name similarity {top_score:.3} (account {}) is below {}",
                index.account(top).id,
                config.name_threshold
            ),
            warnings: Vec::new(),
        };
    }
    let contenders: Vec<&(usize, f64, String)> = scored
        .iter()
        .take_while(|(_, score, _)| *score >= top_score - config.ambiguity_margin)
        .collect();
    if contenders.len() > 1 {
        let lines: Vec<&str> = contenders
            .iter()
            .map(|(_, _, line)| line.as_str())
            .collect();
        return RuleOutcome::Ambiguous {
            candidates: candidates(
                index,
                contenders.iter().map(|(p, score, _)| (*p, *score)),
                MatchMethod::CompanyName,
            ),
            reason: format!(
                "{} accounts have company names within {} of each other: {}",
                contenders.len(),
                config.ambiguity_margin,
                lines.join("; ")
            ),
        };
    }
    RuleOutcome::Matched(Link {
        account_id: index.account(top).id.clone(),
        method: MatchMethod::CompanyName,
        confidence: (top_score * config.name_max_confidence).clamp(0.0, 1.0),
        evidence: vec![top_line],
    })
}

/// Scored candidates sorted by score (highest first), then account id.
fn candidates(
    index: &AccountIndex,
    scored: impl Iterator<Item = (usize, f64)>,
    method: MatchMethod,
) -> Vec<ScoredCandidate> {
    let mut out: Vec<ScoredCandidate> = scored
        .map(|(position, score)| ScoredCandidate {
            account_id: index.account(position).id.clone(),
            method,
            score,
        })
        .collect();
    out.sort_by(|a, b| {
        b.score
            .partial_cmp(&a.score)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.account_id.cmp(&b.account_id))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matching::decision::AccountId;

    pub(crate) fn account(
        id: &str,
        name: &str,
        domains: &[&str],
        external: &[&str],
    ) -> AccountCandidate {
        AccountCandidate {
            id: AccountId::from(id),
            name: name.to_owned(),
            domains: domains.iter().map(|d| (*d).to_owned()).collect(),
            external_ids: external.iter().map(|d| (*d).to_owned()).collect(),
        }
    }

    fn accounts() -> Vec<AccountCandidate> {
        vec![
            account("acc_1", "Acme Inc", &["https://www.acme.com"], &["sf_001"]),
            account(
                "acc_2",
                "Beta Labs GmbH",
                &["beta.de", "beta-labs.com"],
                &["sf_002", "shared_ext"],
            ),
            account("acc_3", "Gamma Ltd", &["gamma.co.uk"], &["shared_ext"]),
            account("acc_4", "Delta SA", &["delta.fr", "gmail.com"], &[]),
            account("acc_5", "Epsilon", &["shared.io"], &[]),
            account("acc_6", "Zeta", &["shared.io"], &[]),
        ]
    }

    fn metadata(pairs: &[(&str, &str)]) -> CustomerEvidence {
        CustomerEvidence {
            metadata: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..CustomerEvidence::default()
        }
    }

    /// What a rule outcome is, in one comparable line.
    fn summary(outcome: &RuleOutcome) -> String {
        match outcome {
            RuleOutcome::Matched(link) => {
                format!("matched {} {}", link.account_id, link.confidence)
            }
            RuleOutcome::Ambiguous { candidates, .. } => format!(
                "ambiguous {}",
                candidates
                    .iter()
                    .map(|c| c.account_id.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            RuleOutcome::NoMatch { .. } => "none".to_owned(),
        }
    }

    #[test]
    fn metadata_rule_table() {
        let index = AccountIndex::build(&accounts());
        let config = MatchConfig::default();
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("cscx_account_id", "acc_1")], "matched acc_1 1"),
            (&[("customer_id", "acc_2")], "matched acc_2 1"),
            (&[("CSCX_Account_ID", " acc_1 ")], "matched acc_1 1"),
            (&[("cscx_account_id", "sf_002")], "matched acc_2 1"),
            (
                &[("cscx_account_id", "acc_1"), ("customer_id", "sf_001")],
                "matched acc_1 1",
            ),
            (
                &[("cscx_account_id", "acc_1"), ("customer_id", "acc_2")],
                "ambiguous acc_1,acc_2",
            ),
            (
                &[("cscx_account_id", "shared_ext")],
                "ambiguous acc_2,acc_3",
            ),
            (&[("cscx_account_id", "acc_999")], "none"),
            (&[("cscx_account_id", "")], "none"),
            (&[("cscx_account_id", "ACC_1")], "none"),
            (&[("account", "acc_1")], "none"),
            (&[], "none"),
        ];
        for (pairs, expected) in cases {
            let outcome = metadata_rule(&index, &metadata(pairs), &config);
            assert_eq!(summary(&outcome), *expected, "{pairs:?}");
        }
    }

    #[test]
    fn metadata_rule_evidence_and_unknown_ids() {
        let index = AccountIndex::build(&accounts());
        let config = MatchConfig::default();
        let RuleOutcome::Matched(link) =
            metadata_rule(&index, &metadata(&[("cscx_account_id", "acc_1")]), &config)
        else {
            panic!("expected a match")
        };
        assert_eq!(link.method, MatchMethod::MetadataId);
        assert_eq!(link.evidence, ["metadata.cscx_account_id = acc_1"]);

        let outcome = metadata_rule(
            &index,
            &metadata(&[("cscx_account_id", "acc_999"), ("customer_id", "sf_002")]),
            &config,
        );
        let RuleOutcome::Matched(link) = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(
            link.evidence,
            [
                "metadata.customer_id = sf_002 is an external id of account acc_2",
                "metadata.cscx_account_id = acc_999 names no account of this tenant",
            ]
        );

        let outcome = metadata_rule(
            &index,
            &metadata(&[("cscx_account_id", "acc_999")]),
            &config,
        );
        let RuleOutcome::NoMatch { reason, warnings } = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(
            reason,
            "metadata.cscx_account_id = acc_999 names no account of this tenant (ignored)"
        );
        assert_eq!(warnings.len(), 1);
    }

    #[test]
    fn metadata_keys_are_configurable() {
        let index = AccountIndex::build(&accounts());
        let config = MatchConfig {
            metadata_keys: vec!["crm_id".to_owned()],
            ..MatchConfig::default()
        };
        let with_default_key = metadata(&[("cscx_account_id", "acc_1")]);
        assert_eq!(
            summary(&metadata_rule(&index, &with_default_key, &config)),
            "none"
        );
        let with_custom_key = metadata(&[("crm_id", "sf_001")]);
        assert_eq!(
            summary(&metadata_rule(&index, &with_custom_key, &config)),
            "matched acc_1 1"
        );
    }

    #[test]
    fn email_domain_rule_table() {
        let index = AccountIndex::build(&accounts());
        let config = MatchConfig::default();
        // (email, invoice emails, expected)
        let cases: &[(Option<&str>, &[&str], &str)] = &[
            (Some("jane@acme.com"), &[], "matched acc_1 0.95"),
            (Some("Jane@ACME.COM"), &[], "matched acc_1 0.95"),
            (Some("billing@eu.acme.com"), &[], "matched acc_1 0.95"),
            (Some("x@beta.de"), &[], "matched acc_2 0.95"),
            (Some("x@beta-labs.com"), &[], "matched acc_2 0.95"),
            (Some("x@ops.gamma.co.uk"), &[], "matched acc_3 0.95"),
            (Some("x@gamma.com"), &[], "none"),
            (Some("x@co.uk"), &[], "none"),
            (Some("x@shared.io"), &[], "ambiguous acc_5,acc_6"),
            (Some("x@gmail.com"), &[], "none"),
            (Some("x@gmail.com"), &["ap@acme.com"], "matched acc_1 0.9"),
            (None, &["ap@acme.com", "ap2@acme.com"], "matched acc_1 0.9"),
            (
                Some("x@reseller.com"),
                &["ap@acme.com"],
                "matched acc_1 0.9",
            ),
            (Some("x@acme.com"), &["ap@beta.de"], "matched acc_1 0.95"),
            (
                None,
                &["ap@acme.com", "ap@beta.de"],
                "ambiguous acc_1,acc_2",
            ),
            (None, &["not-an-email", "ap@mailinator.com"], "none"),
            (Some("   "), &[], "none"),
            (None, &[], "none"),
        ];
        for (email, invoice, expected) in cases {
            let customer = CustomerEvidence {
                email: email.map(str::to_owned),
                invoice_emails: invoice.iter().map(|e| (*e).to_owned()).collect(),
                ..CustomerEvidence::default()
            };
            let outcome = email_domain_rule(&index, &customer, &config);
            assert_eq!(summary(&outcome), *expected, "{email:?} {invoice:?}");
        }
    }

    #[test]
    fn email_domain_rule_evidence_and_notes() {
        let index = AccountIndex::build(&accounts());
        let config = MatchConfig::default();
        let customer = CustomerEvidence {
            email: Some("billing@eu.acme.com".to_owned()),
            ..CustomerEvidence::default()
        };
        let RuleOutcome::Matched(link) = email_domain_rule(&index, &customer, &config) else {
            panic!("expected a match")
        };
        assert_eq!(link.method, MatchMethod::EmailDomain);
        assert_eq!(
            link.evidence,
            ["customer email domain eu.acme.com folds to acme.com, which matches account domain acme.com"]
        );

        let customer = CustomerEvidence {
            email: Some("x@gmail.com".to_owned()),
            invoice_emails: vec!["ap@reseller.com".to_owned()],
            ..CustomerEvidence::default()
        };
        let RuleOutcome::NoMatch { reason, .. } = email_domain_rule(&index, &customer, &config)
        else {
            panic!("expected no match")
        };
        assert_eq!(
            reason,
            "customer email domain gmail.com is free-mail (not used); \
             invoice email domain reseller.com belongs to no account"
        );
    }

    #[test]
    fn email_domain_rule_never_uses_an_account_free_mail_domain() {
        // acc_4 listed gmail.com as a domain; nobody links through it.
        let index = AccountIndex::build(&accounts());
        let customer = CustomerEvidence {
            email: Some("someone@gmail.com".to_owned()),
            ..CustomerEvidence::default()
        };
        assert_eq!(
            summary(&email_domain_rule(
                &index,
                &customer,
                &MatchConfig::default()
            )),
            "none"
        );
    }

    #[test]
    fn company_name_rule_table() {
        let index = AccountIndex::build(&[
            account("acc_1", "Acme Inc", &[], &[]),
            account("acc_2", "Acme Labs", &[], &[]),
            account("acc_3", "Société Générale SA", &[], &[]),
            account("acc_4", "Globex Corporation", &[], &[]),
            account("acc_5", "Globex Corp.", &[], &[]),
            account("acc_6", "Initech Payments", &[], &[]),
            account("acc_7", "Initech Pavements", &[], &[]),
        ]);
        let config = MatchConfig::default();
        let cases: &[(Option<&str>, Option<&str>, &str)] = &[
            (Some("ACME, Inc."), None, "matched acc_1 0.85"),
            (Some("Acme"), None, "matched acc_1 0.85"),
            (Some("Acme Labs LLC"), None, "matched acc_2 0.85"),
            (Some("AcmeLabs"), None, "matched acc_2 0.85"),
            (Some("Societe Generale"), None, "matched acc_3 0.85"),
            (Some("SOCIÉTÉ GÉNÉRALE"), None, "matched acc_3 0.85"),
            (Some("Globex"), None, "ambiguous acc_4,acc_5"),
            (Some("Acme Widgets"), None, "none"),
            (Some("Jane Doe"), None, "none"),
            (Some("Inc."), None, "none"),
            (None, Some("Acme Inc"), "matched acc_1 0.85"),
            (Some("Jane Doe"), Some("Acme Labs"), "matched acc_2 0.85"),
            (None, None, "none"),
        ];
        for (name, business_name, expected) in cases {
            let customer = CustomerEvidence {
                name: name.map(str::to_owned),
                business_name: business_name.map(str::to_owned),
                ..CustomerEvidence::default()
            };
            let outcome = company_name_rule(&index, &customer, &config);
            assert_eq!(summary(&outcome), *expected, "{name:?} / {business_name:?}");
        }
    }

    #[test]
    fn company_name_rule_scores_typos_and_margins() {
        let index = AccountIndex::build(&[
            account("acc_6", "Initech Payments", &[], &[]),
            account("acc_7", "Initech Pavements", &[], &[]),
        ]);
        let config = MatchConfig {
            name_threshold: 0.9,
            ..MatchConfig::default()
        };
        let customer = CustomerEvidence {
            name: Some("Initech Paymnets".to_owned()),
            ..CustomerEvidence::default()
        };
        let RuleOutcome::Matched(link) = company_name_rule(&index, &customer, &config) else {
            panic!("expected a match")
        };
        assert_eq!(link.account_id.as_str(), "acc_6");
        assert!(
            link.confidence < 0.85 && link.confidence > 0.75,
            "{}",
            link.confidence
        );
        assert!(
            link.evidence[0].contains("\"initech paymnets\" / \"initech payments\""),
            "{:?}",
            link.evidence
        );
    }

    #[test]
    fn company_name_rule_uses_description_only_when_configured() {
        let index = AccountIndex::build(&[account("acc_1", "Acme Inc", &[], &[])]);
        let customer = CustomerEvidence {
            description: Some("Acme Inc".to_owned()),
            ..CustomerEvidence::default()
        };
        let config = MatchConfig::default();
        assert_eq!(
            summary(&company_name_rule(&index, &customer, &config)),
            "none"
        );
        let config = MatchConfig {
            use_description_as_name: true,
            ..MatchConfig::default()
        };
        assert_eq!(
            summary(&company_name_rule(&index, &customer, &config)),
            "matched acc_1 0.85"
        );
    }

    #[test]
    fn decide_runs_rules_in_order_of_strength() {
        let accounts = accounts();
        let config = MatchConfig::default();
        let customer = CustomerEvidence {
            metadata: [("cscx_account_id".to_owned(), "acc_3".to_owned())].into(),
            email: Some("x@acme.com".to_owned()),
            name: Some("Beta Labs".to_owned()),
            ..CustomerEvidence::default()
        };
        assert_eq!(
            decide(&customer, &accounts, &config)
                .account_id()
                .unwrap()
                .as_str(),
            "acc_3"
        );

        let customer = CustomerEvidence {
            metadata: BTreeMap::new(),
            ..customer
        };
        let decision = decide(&customer, &accounts, &config);
        assert_eq!(decision.link().unwrap().method, MatchMethod::EmailDomain);
        assert_eq!(decision.account_id().unwrap().as_str(), "acc_1");

        let customer = CustomerEvidence {
            email: None,
            ..customer
        };
        let decision = decide(&customer, &accounts, &config);
        assert_eq!(decision.link().unwrap().method, MatchMethod::CompanyName);
        assert_eq!(decision.account_id().unwrap().as_str(), "acc_2");

        let decision = decide(&CustomerEvidence::default(), &accounts, &config);
        let MatchDecision::Unmatched { reason } = decision else {
            panic!("{decision:?}")
        };
        assert_eq!(
            reason,
            "no account id in metadata (cscx_account_id, customer_id); no customer email; no company name"
        );
    }

    #[test]
    fn decisions_serialize_with_a_tag() {
        let decision = decide(
            &metadata(&[("cscx_account_id", "acc_1")]),
            &accounts(),
            &MatchConfig::default(),
        );
        let json = serde_json::to_value(&decision).unwrap();
        assert_eq!(json["decision"], "matched");
        assert_eq!(json["method"], "metadata_id");
        assert_eq!(json["account_id"], "acc_1");
        let back: MatchDecision = serde_json::from_value(json).unwrap();
        assert_eq!(back, decision);
    }
}
