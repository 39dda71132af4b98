//! Matching Stripe customers to CSCX accounts: pure rules, no IO.
//!
//! A Stripe customer ([`CustomerEvidence`]) is matched against a tenant's
//! accounts ([`AccountCandidate`], indexed once per tenant in an
//! [`AccountIndex`]) and gets a [`MatchDecision`]: linked to exactly one
//! account with the method, a confidence in `[0, 1]` and human-readable
//! evidence; ambiguous (sent to review, never guessed); or unmatched, with
//! what each rule saw. Several customers may link to one account; one
//! customer links to at most one account per tenant.
//!
//! - [`email`]: email and website domains, folded to the registrable domain
//!   with the public suffix list, classified business / free-mail /
//!   disposable / invalid.
//! - [`company_name`]: company-name normalisation (accents, case,
//!   punctuation, legal forms) and similarity.
//! - [`rules`]: the rules in order of strength — metadata id, business email
//!   domain, company name — and [`decide`].
//! - [`MatchConfig`]: keys, thresholds and margin, with defaults.
//!
//! Precision comes first (a wrong link is worse than none): no link ever goes
//! through a free-mail or disposable domain, and ties are never broken by
//! guessing. A manual override is not decided here: the caller applies it
//! before asking.

pub mod company_name;
mod config;
mod decision;
pub mod email;
mod index;
pub mod rules;

#[cfg(test)]
mod property_tests;
#[cfg(test)]
mod tricky_tests;

pub use company_name::{company_name_similarity, normalize_company_name, CompanyName};
pub use config::{MatchConfig, MatchConfigError};
pub use decision::{
    AccountCandidate, AccountId, CustomerEvidence, Link, MatchDecision, MatchMethod,
    ScoredCandidate,
};
pub use email::{
    classify_domain, classify_email, email_domain, email_host, is_disposable_domain,
    is_free_mail_domain, normalize_website, DomainError, EmailDomainClass, RegistrableDomain,
};
pub use index::{AccountIndex, IgnoredDomain};
pub use rules::{company_name_rule, decide, email_domain_rule, metadata_rule, RuleOutcome};
