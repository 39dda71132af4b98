//! What link a Stripe customer should have, given the rules' verdict and a person's
//! decisions. Pure: the re-matcher loads the inputs, calls [`decide`], and writes the result
//! only when it differs from the stored link ([`Outcome::same_as`]).
//!
//! Precedence, strongest first:
//! 1. the customer was deleted in Stripe → `deleted`, no account;
//! 2. a person said "no account" → `rejected`;
//! 3. a person linked (SET) or confirmed an account → `manual`, while that account exists;
//!    if it was deleted in CSCX the customer is `unmatched` (and the pin stays, so the link
//!    comes back if the account does);
//! 4. the rules ([`domain::matching`]); a link or ambiguity involving an account a person
//!    rejected for this customer is not applied: it goes to review as `unmatched`.

use std::collections::{BTreeMap, HashMap};

use domain::matching::{
    AccountIndex, CustomerEvidence, MatchConfig, MatchDecision, ScoredCandidate,
};
use serde::Serialize;

/// Who decides when no person did.
pub const RULES_ACTOR: &str = "matcher";

/// The stored state of a link, as the views and messages spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Linked,
    Manual,
    Ambiguous,
    Unmatched,
    Rejected,
    Deleted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Linked => "linked",
            Self::Manual => "manual",
            Self::Ambiguous => "ambiguous",
            Self::Unmatched => "unmatched",
            Self::Rejected => "rejected",
            Self::Deleted => "deleted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "linked" => Self::Linked,
            "manual" => Self::Manual,
            "ambiguous" => Self::Ambiguous,
            "unmatched" => Self::Unmatched,
            "rejected" => Self::Rejected,
            "deleted" => Self::Deleted,
            _ => return None,
        })
    }
}

/// A Stripe customer as the matcher knows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KnownCustomer {
    pub stripe_customer_id: String,
    pub stripe_account_id: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub deleted: bool,
}

impl KnownCustomer {
    fn evidence(&self) -> CustomerEvidence {
        CustomerEvidence {
            metadata: self.metadata.clone(),
            email: self.email.clone(),
            invoice_emails: Vec::new(),
            name: self.name.clone(),
            business_name: None,
            description: None,
        }
    }
}

/// A person's standing decisions about one customer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Manual {
    pub pinned_account_id: Option<String>,
    pub pinned_none: bool,
    pub excluded_account_ids: Vec<String>,
    pub decided_by: String,
    pub note: Option<String>,
}

/// A tenant's live accounts: the index the rules search and who owns each account.
pub struct TenantAccounts {
    pub index: AccountIndex,
    /// Live (not deleted) account id → its CSM, if any.
    pub csm: HashMap<String, Option<String>>,
}

impl TenantAccounts {
    fn exists(&self, account_id: &str) -> bool {
        self.csm.contains_key(account_id)
    }

    fn csm_of(&self, account_id: &str) -> Option<String> {
        self.csm.get(account_id).cloned().flatten()
    }
}

/// The link a customer should have.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub account_id: Option<String>,
    pub status: Status,
    pub method: Option<&'static str>,
    pub confidence: f64,
    pub evidence: Vec<String>,
    pub candidates: Vec<ScoredCandidate>,
    pub reason: Option<String>,
    pub csm_user_id: Option<String>,
    pub decided_by: String,
}

impl Outcome {
    fn none(status: Status, reason: String, decided_by: &str) -> Self {
        Self {
            account_id: None,
            status,
            method: None,
            confidence: 0.0,
            evidence: Vec::new(),
            candidates: Vec::new(),
            reason: Some(reason),
            csm_user_id: None,
            decided_by: decided_by.to_owned(),
        }
    }

    /// Whether storing `self` over `other` would change anything a consumer sees.
    pub fn same_as(&self, other: &Outcome) -> bool {
        self.account_id == other.account_id
            && self.status == other.status
            && self.method == other.method
            && (self.confidence - other.confidence).abs() < 1e-9
            && self.evidence == other.evidence
            && self.candidates == other.candidates
            && self.reason == other.reason
            && self.csm_user_id == other.csm_user_id
            && self.decided_by == other.decided_by
    }
}

/// Decides one customer's link (see the module docs for the precedence).
pub fn decide(
    customer: &KnownCustomer,
    manual: Option<&Manual>,
    accounts: &TenantAccounts,
    config: &MatchConfig,
) -> Outcome {
    if customer.deleted {
        return Outcome::none(
            Status::Deleted,
            "the Stripe customer was deleted".into(),
            RULES_ACTOR,
        );
    }
    if let Some(manual) = manual {
        if manual.pinned_none {
            let mut outcome = Outcome::none(
                Status::Rejected,
                note_suffix(
                    format!("{} said it belongs to no account", manual.decided_by),
                    manual,
                ),
                &manual.decided_by,
            );
            outcome.method = Some("manual");
            outcome.confidence = 1.0;
            return outcome;
        }
        if let Some(pinned) = &manual.pinned_account_id {
            if !accounts.exists(pinned) {
                return Outcome::none(
                    Status::Unmatched,
                    format!(
                        "manually linked to account {pinned} by {}, which no longer exists",
                        manual.decided_by
                    ),
                    &manual.decided_by,
                );
            }
            return Outcome {
                account_id: Some(pinned.clone()),
                status: Status::Manual,
                method: Some("manual"),
                confidence: 1.0,
                evidence: vec![note_suffix(
                    format!("linked by {}", manual.decided_by),
                    manual,
                )],
                candidates: Vec::new(),
                reason: None,
                csm_user_id: accounts.csm_of(pinned),
                decided_by: manual.decided_by.clone(),
            };
        }
    }
    let excluded: &[String] = manual.map_or(&[], |m| m.excluded_account_ids.as_slice());
    let is_excluded = |id: &str| excluded.iter().any(|e| e == id);
    match accounts.index.decide(&customer.evidence(), config) {
        MatchDecision::Matched(link) if is_excluded(link.account_id.as_str()) => Outcome::none(
            Status::Unmatched,
            format!(
                "{} matched account {} ({}), which a person rejected for this customer",
                link.method,
                link.account_id,
                link.evidence.join("; ")
            ),
            RULES_ACTOR,
        ),
        MatchDecision::Matched(link) => Outcome {
            csm_user_id: accounts.csm_of(link.account_id.as_str()),
            account_id: Some(link.account_id.as_str().to_owned()),
            status: Status::Linked,
            method: Some(link.method.as_str()),
            confidence: link.confidence.clamp(0.0, 1.0),
            evidence: link.evidence,
            candidates: Vec::new(),
            reason: None,
            decided_by: RULES_ACTOR.to_owned(),
        },
        MatchDecision::Ambiguous { candidates, reason } => {
            let rejected: Vec<&str> = candidates
                .iter()
                .map(|c| c.account_id.as_str())
                .filter(|id| is_excluded(id))
                .collect();
            let reason = if rejected.is_empty() {
                reason
            } else {
                format!("{reason}; rejected by a person: {}", rejected.join(", "))
            };
            Outcome {
                candidates,
                ..Outcome::none(Status::Ambiguous, reason, RULES_ACTOR)
            }
        }
        MatchDecision::Unmatched { reason } => {
            Outcome::none(Status::Unmatched, reason, RULES_ACTOR)
        }
    }
}

fn note_suffix(text: String, manual: &Manual) -> String {
    match manual.note.as_deref().map(str::trim) {
        Some(note) if !note.is_empty() => format!("{text}: {note}"),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use domain::matching::AccountCandidate;

    use super::*;

    fn accounts(list: &[(&str, &str, &[&str], Option<&str>)]) -> TenantAccounts {
        let candidates: Vec<AccountCandidate> = list
            .iter()
            .map(|(id, name, domains, _)| AccountCandidate {
                id: (*id).into(),
                name: (*name).into(),
                domains: domains.iter().map(|d| (*d).to_owned()).collect(),
                external_ids: Vec::new(),
            })
            .collect();
        TenantAccounts {
            index: AccountIndex::build(&candidates),
            csm: list
                .iter()
                .map(|(id, _, _, csm)| ((*id).to_owned(), csm.map(str::to_owned)))
                .collect(),
        }
    }

    fn customer(email: &str, name: &str) -> KnownCustomer {
        KnownCustomer {
            stripe_customer_id: "cus_1".into(),
            stripe_account_id: "acct_1".into(),
            email: Some(email.into()),
            name: Some(name.into()),
            ..Default::default()
        }
    }

    fn book() -> TenantAccounts {
        accounts(&[
            ("acc_acme", "Acme Inc", &["acme.com"], Some("csm-1")),
            ("acc_globex", "Globex", &["globex.com"], None),
        ])
    }

    #[test]
    fn rules_link_with_the_accounts_csm() {
        let out = decide(
            &customer("ap@billing.acme.com", "Acme"),
            None,
            &book(),
            &MatchConfig::default(),
        );
        assert_eq!(out.status, Status::Linked);
        assert_eq!(out.account_id.as_deref(), Some("acc_acme"));
        assert_eq!(out.method, Some("email_domain"));
        assert_eq!(out.csm_user_id.as_deref(), Some("csm-1"));
        assert_eq!(out.decided_by, RULES_ACTOR);
        assert!(out.confidence > 0.9 && out.confidence <= 1.0);
        assert!(!out.evidence.is_empty());
    }

    #[test]
    fn deleted_customers_link_to_nothing_whatever_a_person_said() {
        let mut c = customer("ap@acme.com", "Acme");
        c.deleted = true;
        let manual = Manual {
            pinned_account_id: Some("acc_acme".into()),
            decided_by: "alice".into(),
            ..Default::default()
        };
        let out = decide(&c, Some(&manual), &book(), &MatchConfig::default());
        assert_eq!(out.status, Status::Deleted);
        assert_eq!(out.account_id, None);
    }

    #[test]
    fn a_manual_link_beats_the_rules() {
        let manual = Manual {
            pinned_account_id: Some("acc_globex".into()),
            decided_by: "alice".into(),
            note: Some("Globex pays for Acme's seats".into()),
            ..Default::default()
        };
        let out = decide(
            &customer("ap@acme.com", "Acme"),
            Some(&manual),
            &book(),
            &MatchConfig::default(),
        );
        assert_eq!(out.status, Status::Manual);
        assert_eq!(out.account_id.as_deref(), Some("acc_globex"));
        assert_eq!(out.method, Some("manual"));
        assert_eq!(out.confidence, 1.0);
        assert_eq!(out.decided_by, "alice");
        assert_eq!(
            out.evidence,
            ["linked by alice: Globex pays for Acme's seats"]
        );
    }

    #[test]
    fn a_manual_link_to_a_deleted_account_waits_in_review() {
        let manual = Manual {
            pinned_account_id: Some("acc_gone".into()),
            decided_by: "alice".into(),
            ..Default::default()
        };
        let out = decide(
            &customer("ap@acme.com", "Acme"),
            Some(&manual),
            &book(),
            &MatchConfig::default(),
        );
        assert_eq!(out.status, Status::Unmatched);
        assert_eq!(out.account_id, None);
        assert!(out.reason.unwrap().contains("acc_gone"));
    }

    #[test]
    fn no_account_by_hand_is_rejected() {
        let manual = Manual {
            pinned_none: true,
            decided_by: "bob".into(),
            ..Default::default()
        };
        let out = decide(
            &customer("ap@acme.com", "Acme"),
            Some(&manual),
            &book(),
            &MatchConfig::default(),
        );
        assert_eq!(out.status, Status::Rejected);
        assert_eq!(out.account_id, None);
        assert_eq!(out.decided_by, "bob");
    }

    #[test]
    fn a_rejected_account_is_never_linked_automatically() {
        let manual = Manual {
            excluded_account_ids: vec!["acc_acme".into()],
            decided_by: "bob".into(),
            ..Default::default()
        };
        let out = decide(
            &customer("ap@acme.com", "Acme"),
            Some(&manual),
            &book(),
            &MatchConfig::default(),
        );
        assert_eq!(out.status, Status::Unmatched);
        assert_eq!(out.account_id, None);
        assert!(out.reason.unwrap().contains("rejected"));
        // A different account found by the rules still links.
        let out = decide(
            &customer("ap@globex.com", "Globex"),
            Some(&manual),
            &book(),
            &MatchConfig::default(),
        );
        assert_eq!(out.account_id.as_deref(), Some("acc_globex"));
    }

    #[test]
    fn ambiguity_is_kept_for_review_with_candidates() {
        let shared = accounts(&[
            ("acc_a", "Acme Labs", &["acme.com"], None),
            ("acc_b", "Acme Payments", &["acme.com"], None),
        ]);
        let out = decide(
            &customer("ap@acme.com", "Acme"),
            None,
            &shared,
            &MatchConfig::default(),
        );
        assert_eq!(out.status, Status::Ambiguous);
        assert_eq!(out.account_id, None);
        assert_eq!(out.candidates.len(), 2);
    }

    #[test]
    fn free_mail_never_links() {
        let out = decide(
            &customer("jane@gmail.com", "Jane Doe"),
            None,
            &accounts(&[("acc_g", "Gmail Fans", &["gmail.com"], None)]),
            &MatchConfig::default(),
        );
        assert_eq!(out.status, Status::Unmatched);
    }

    #[test]
    fn same_as_ignores_nothing_a_consumer_sees() {
        let a = decide(
            &customer("ap@acme.com", "Acme"),
            None,
            &book(),
            &MatchConfig::default(),
        );
        assert!(a.same_as(&a.clone()));
        let mut b = a.clone();
        b.csm_user_id = Some("csm-2".into());
        assert!(!a.same_as(&b), "a CSM change is republished");
        let mut c = a.clone();
        c.confidence = 0.5;
        assert!(!a.same_as(&c));
    }

    #[test]
    fn statuses_round_trip() {
        for s in [
            Status::Linked,
            Status::Manual,
            Status::Ambiguous,
            Status::Unmatched,
            Status::Rejected,
            Status::Deleted,
        ] {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        assert_eq!(Status::parse("maybe"), None);
    }
}
