//! What goes into matching (a Stripe customer's evidence, the tenant's
//! accounts) and what comes out (a [`MatchDecision`]).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A CSCX account id: opaque to this crate, compared exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct AccountId(String);

impl AccountId {
    /// Wraps an id as CSCX spells it.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id as CSCX spells it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for AccountId {
    fn from(id: &str) -> Self {
        Self(id.to_owned())
    }
}

impl From<String> for AccountId {
    fn from(id: String) -> Self {
        Self(id)
    }
}

/// One CSCX account of the tenant, as matching sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AccountCandidate {
    /// The CSCX account id.
    pub id: AccountId,
    /// The account's name as entered in CSCX.
    pub name: String,
    /// Websites or domains as entered in CSCX (`https://www.acme.com/`,
    /// `acme.co.uk`); normalised with
    /// [`normalize_website`](super::normalize_website). Free-mail and
    /// disposable domains are ignored.
    pub domains: Vec<String>,
    /// Other ids the account is known by (CRM ids, legacy ids), matched
    /// exactly against Stripe metadata.
    pub external_ids: Vec<String>,
}

/// What a Stripe customer tells about who it is.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CustomerEvidence {
    /// The customer's `metadata`.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// The customer's `email`.
    #[serde(default)]
    pub email: Option<String>,
    /// Other billing addresses: invoice recipients, billing contacts, in the
    /// order they should be trusted.
    #[serde(default)]
    pub invoice_emails: Vec<String>,
    /// The customer's `name` (a company or a person).
    #[serde(default)]
    pub name: Option<String>,
    /// The customer's `business_name`, when set.
    #[serde(default)]
    pub business_name: Option<String>,
    /// The customer's `description`; compared as a name only when
    /// [`MatchConfig::use_description_as_name`](super::MatchConfig::use_description_as_name).
    #[serde(default)]
    pub description: Option<String>,
}

/// Which rule produced a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchMethod {
    /// A CSCX account id (or external id) in the customer's metadata.
    MetadataId,
    /// The customer's business email domain is one of the account's domains.
    EmailDomain,
    /// The customer's name is similar enough to the account's name.
    CompanyName,
}

impl MatchMethod {
    /// The name used in storage and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MetadataId => "metadata_id",
            Self::EmailDomain => "email_domain",
            Self::CompanyName => "company_name",
        }
    }
}

impl fmt::Display for MatchMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An automatic link of one Stripe customer to one account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    /// The account the customer belongs to.
    pub account_id: AccountId,
    /// The rule that decided.
    pub method: MatchMethod,
    /// How sure the rule is, in `[0, 1]`.
    pub confidence: f64,
    /// Human-readable reasons, strongest first (e.g.
    /// `metadata.cscx_account_id = acc_42`).
    pub evidence: Vec<String>,
}

/// An account that a rule could not tell apart from another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredCandidate {
    /// The account.
    pub account_id: AccountId,
    /// The rule that found it.
    pub method: MatchMethod,
    /// The rule's score for it, in `[0, 1]`.
    pub score: f64,
}

/// The outcome of matching one Stripe customer against a tenant's accounts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum MatchDecision {
    /// Linked automatically.
    Matched(Link),
    /// Several accounts fit equally well: not guessed, sent to review.
    /// Candidates are sorted by score (highest first), then account id.
    Ambiguous {
        /// The accounts in contention.
        candidates: Vec<ScoredCandidate>,
        /// Why they could not be told apart.
        reason: String,
    },
    /// No rule found an account; listed for review.
    Unmatched {
        /// What each rule saw.
        reason: String,
    },
}

impl MatchDecision {
    /// The link, when matched.
    pub fn link(&self) -> Option<&Link> {
        match self {
            Self::Matched(link) => Some(link),
            _ => None,
        }
    }

    /// The linked account id, when matched.
    pub fn account_id(&self) -> Option<&AccountId> {
        self.link().map(|link| &link.account_id)
    }
}
