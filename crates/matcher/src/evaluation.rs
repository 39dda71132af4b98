//! Measuring matching against labelled sets: the Stripe fake's generated book (every
//! customer labelled with its company) and the hand-written tricky set
//! (`data/tricky_set.json`). Used by `make bench-match` and the tricky-set test.

use std::collections::{BTreeMap, HashMap};

use domain::matching::{
    classify_email, AccountCandidate, AccountIndex, CustomerEvidence, EmailDomainClass,
    MatchConfig, MatchDecision,
};
use serde::{Deserialize, Serialize};

/// A customer with the account it truly belongs to (`None`: no automatic link is right).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Labelled {
    pub id: String,
    pub evidence: CustomerEvidence,
    pub expect: Option<String>,
    pub why: String,
}

/// Accounts and labelled customers.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LabelledSet {
    pub accounts: Vec<AccountCandidate>,
    pub customers: Vec<Labelled>,
}

/// Counts for one rule (or all of them).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts {
    pub right: usize,
    pub wrong: usize,
}

impl Counts {
    pub fn precision(&self) -> f64 {
        if self.right + self.wrong == 0 {
            1.0
        } else {
            self.right as f64 / (self.right + self.wrong) as f64
        }
    }
}

/// How the rules did on a set.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub customers: usize,
    /// Customers with an expected account.
    pub expected_links: usize,
    pub overall: Counts,
    pub by_method: BTreeMap<&'static str, Counts>,
    pub ambiguous: usize,
    pub unmatched: usize,
    /// Automatic links through a free-mail or disposable email domain (must be 0).
    pub free_mail_links: usize,
    /// (customer, expected, got, why) for every wrong link and every missed one.
    pub mistakes: Vec<(String, Option<String>, Option<String>, String)>,
}

impl Report {
    pub fn precision(&self) -> f64 {
        self.overall.precision()
    }

    /// Right links over customers that have an account.
    pub fn recall(&self) -> f64 {
        if self.expected_links == 0 {
            1.0
        } else {
            self.overall.right as f64 / self.expected_links as f64
        }
    }
}

/// Scores `decisions` (one per customer, same order) against the labels.
pub fn score(set: &LabelledSet, decisions: &[MatchDecision]) -> Report {
    let mut report = Report {
        customers: set.customers.len(),
        ..Default::default()
    };
    for (customer, decision) in set.customers.iter().zip(decisions) {
        report.expected_links += usize::from(customer.expect.is_some());
        let got = decision.account_id().map(|a| a.as_str().to_owned());
        match decision {
            MatchDecision::Matched(link) => {
                let counts = report.by_method.entry(link.method.as_str()).or_default();
                let right = customer.expect.as_deref() == Some(link.account_id.as_str());
                if right {
                    counts.right += 1;
                    report.overall.right += 1;
                } else {
                    counts.wrong += 1;
                    report.overall.wrong += 1;
                }
                let through_free_mail = link.method == domain::MatchMethod::EmailDomain
                    && customer.evidence.email.as_deref().is_some_and(|e| {
                        matches!(
                            classify_email(e),
                            EmailDomainClass::FreeMail(_) | EmailDomainClass::Disposable(_)
                        )
                    });
                report.free_mail_links += usize::from(through_free_mail);
                if !right {
                    report.mistakes.push((
                        customer.id.clone(),
                        customer.expect.clone(),
                        got,
                        customer.why.clone(),
                    ));
                }
            }
            MatchDecision::Ambiguous { .. } | MatchDecision::Unmatched { .. } => {
                if matches!(decision, MatchDecision::Ambiguous { .. }) {
                    report.ambiguous += 1;
                } else {
                    report.unmatched += 1;
                }
                if customer.expect.is_some() {
                    report.mistakes.push((
                        customer.id.clone(),
                        customer.expect.clone(),
                        None,
                        customer.why.clone(),
                    ));
                }
            }
        }
    }
    report
}

/// Decides every customer of the set with one index.
pub fn decide_all(set: &LabelledSet, config: &MatchConfig) -> Vec<MatchDecision> {
    let index = AccountIndex::build(&set.accounts);
    set.customers
        .iter()
        .map(|c| index.decide(&c.evidence, config))
        .collect()
}

#[derive(Deserialize)]
struct TrickyFile {
    accounts: Vec<TrickyAccount>,
    customers: Vec<TrickyCustomer>,
}

#[derive(Deserialize)]
struct TrickyAccount {
    id: String,
    name: String,
    #[serde(default)]
    domains: Vec<String>,
    #[serde(default)]
    external_ids: Vec<String>,
}

#[derive(Deserialize)]
struct TrickyCustomer {
    id: String,
    email: Option<String>,
    name: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    expect: Option<String>,
    why: String,
}

/// The hand-written tricky set shipped with the crate.
pub fn tricky_set() -> LabelledSet {
    let file: TrickyFile = serde_json::from_str(include_str!("../data/tricky_set.json"))
        .expect("data/tricky_set.json is valid");
    LabelledSet {
        accounts: file
            .accounts
            .into_iter()
            .map(|a| AccountCandidate {
                id: a.id.into(),
                name: a.name,
                domains: a.domains,
                external_ids: a.external_ids,
            })
            .collect(),
        customers: file
            .customers
            .into_iter()
            .map(|c| Labelled {
                id: c.id,
                evidence: CustomerEvidence {
                    metadata: c.metadata,
                    email: c.email,
                    name: c.name,
                    ..Default::default()
                },
                expect: c.expect,
                why: c.why,
            })
            .collect(),
    }
}

/// A labelled set from a generated book: CSCX accounts are the book's companies (name and
/// domain as the CS platform would hold them), customers are the Stripe customers with the
/// company the generator made them for.
pub fn from_book(
    companies: &[(String, String, String)],
    customers: &[(String, CustomerEvidence, String)],
) -> LabelledSet {
    let mut accounts: HashMap<&str, AccountCandidate> = HashMap::new();
    for (id, name, domain) in companies {
        accounts.insert(
            id,
            AccountCandidate {
                id: id.as_str().into(),
                name: name.clone(),
                domains: vec![domain.clone()],
                external_ids: Vec::new(),
            },
        );
    }
    let mut accounts: Vec<AccountCandidate> = accounts.into_values().collect();
    accounts.sort_by(|a, b| a.id.cmp(&b.id));
    LabelledSet {
        accounts,
        customers: customers
            .iter()
            .map(|(id, evidence, company)| Labelled {
                id: id.clone(),
                evidence: evidence.clone(),
                expect: Some(company.clone()),
                why: "generated".into(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scoring_counts_right_wrong_missed_and_free_mail() {
        let set = LabelledSet {
            accounts: vec![AccountCandidate {
                id: "a".into(),
                name: "Acme".into(),
                domains: vec!["acme.com".into()],
                external_ids: vec![],
            }],
            customers: vec![
                Labelled {
                    id: "c1".into(),
                    evidence: CustomerEvidence {
                        email: Some("x@acme.com".into()),
                        ..Default::default()
                    },
                    expect: Some("a".into()),
                    why: String::new(),
                },
                Labelled {
                    id: "c2".into(),
                    evidence: CustomerEvidence {
                        email: Some("y@acme.com".into()),
                        ..Default::default()
                    },
                    expect: None,
                    why: "should not link".into(),
                },
                Labelled {
                    id: "c3".into(),
                    evidence: CustomerEvidence {
                        email: Some("z@gmail.com".into()),
                        ..Default::default()
                    },
                    expect: Some("a".into()),
                    why: "missed".into(),
                },
            ],
        };
        let report = score(&set, &decide_all(&set, &MatchConfig::default()));
        assert_eq!(report.overall, Counts { right: 1, wrong: 1 });
        assert_eq!(report.precision(), 0.5);
        assert_eq!(report.recall(), 0.5);
        assert_eq!(report.unmatched, 1);
        assert_eq!(report.free_mail_links, 0);
        assert_eq!(report.mistakes.len(), 2);
        assert_eq!(report.by_method["email_domain"].wrong, 1);
    }

    #[test]
    fn tricky_set_loads() {
        let set = tricky_set();
        assert!(set.accounts.len() >= 10);
        assert!(set.customers.len() >= 30);
        for c in &set.customers {
            if let Some(expected) = &c.expect {
                assert!(
                    set.accounts.iter().any(|a| a.id.as_str() == expected),
                    "{}: unknown account {expected}",
                    c.id
                );
            }
        }
    }

    /// Precision first: no wrong automatic link and none through free mail on the tricky
    /// set; the misses are listed (and must stay few).
    #[test]
    fn tricky_set_has_no_wrong_links() {
        let set = tricky_set();
        let report = score(&set, &decide_all(&set, &MatchConfig::default()));
        let wrong: Vec<_> = report
            .mistakes
            .iter()
            .filter(|(_, _, got, _)| got.is_some())
            .collect();
        assert!(wrong.is_empty(), "wrong links: {wrong:#?}");
        assert_eq!(report.free_mail_links, 0);
        assert!(
            report.recall() >= 0.9,
            "recall {:.3}; missed: {:#?}",
            report.recall(),
            report.mistakes
        );
    }
}
