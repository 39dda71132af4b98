//! Which of the tenant's accounts a typed name means.
//!
//! A name matches, in order of strength: an account id exactly; the same name but for case,
//! accents and punctuation ("globex inc" = "Globex, Inc."); the same company name without
//! legal forms, or every typed word a word of it, or the typed name a prefix of it ("Acme" →
//! "Acme Corp" and "Acme Labs"); a close spelling (similarity ≥ [`TYPO_SIMILARITY`]). The strongest level with any
//! match decides: one account is the answer, several are a choice — never a guess.

use serde::Serialize;

use super::Reading;
use crate::matching::company_name::{fold_text, CompanyName};

/// Similarity from which a name counts as a misspelling of an account's name.
pub const TYPO_SIMILARITY: f64 = 0.85;
/// Accounts within this much of the best similarity are offered together.
const TYPO_MARGIN: f64 = 0.05;
/// Most accounts offered in one choice.
pub const MAX_CHOICES: usize = 10;

/// An account of the tenant, as the chat sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KnownAccount {
    /// The CSCX account id.
    pub account_id: String,
    /// Its name.
    pub name: String,
}

/// What a chat question's account turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountResolution<'a> {
    /// One account, with the reading that named it.
    Found {
        /// The reading whose name matched.
        reading: &'a Reading,
        /// The account.
        account: &'a KnownAccount,
    },
    /// Several accounts fit equally well; the user must pick (sorted by name, at most
    /// [`MAX_CHOICES`]).
    Ambiguous {
        /// The reading whose name matched several.
        reading: &'a Reading,
        /// The candidates.
        choices: Vec<&'a KnownAccount>,
    },
    /// No reading names an account of the tenant.
    Unknown {
        /// The preferred reading, for the message.
        reading: &'a Reading,
    },
}

fn words_of(raw: &str) -> Vec<String> {
    fold_text(raw)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// The accounts `typed` could mean at the strongest level that has any.
pub fn candidates<'a>(typed: &str, accounts: &'a [KnownAccount]) -> Vec<&'a KnownAccount> {
    let typed = typed.trim();
    if typed.is_empty() {
        return Vec::new();
    }
    let by_id: Vec<&KnownAccount> = accounts.iter().filter(|a| a.account_id == typed).collect();
    if !by_id.is_empty() {
        return by_id;
    }
    let wanted = CompanyName::new(typed);
    if wanted.is_empty() {
        return Vec::new();
    }
    let names: Vec<(&KnownAccount, CompanyName)> = accounts
        .iter()
        .map(|a| (a, CompanyName::new(&a.name)))
        .collect();
    // The name as written, only case, accents and punctuation aside ("globex inc" =
    // "Globex, Inc."); legal forms count here, so "Acme" is not yet "Acme Corp".
    let folded = words_of(typed);
    let same: Vec<&KnownAccount> = accounts
        .iter()
        .filter(|a| words_of(&a.name) == folded)
        .collect();
    if !same.is_empty() {
        return same;
    }
    // Without legal forms, whole or in part: "Acme" is "Acme Corp" and "Acme Labs" alike.
    let partial: Vec<&KnownAccount> = names
        .iter()
        .filter(|(_, name)| {
            !name.is_empty()
                && (name.compact() == wanted.compact()
                    || wanted.tokens().iter().all(|t| name.tokens().contains(t))
                    || name.compact().starts_with(&wanted.compact()))
        })
        .map(|(a, _)| *a)
        .collect();
    if !partial.is_empty() {
        return partial;
    }
    let scored: Vec<(&KnownAccount, f64)> = names
        .iter()
        .map(|(a, name)| (*a, wanted.similarity(name)))
        .filter(|(_, score)| *score >= TYPO_SIMILARITY)
        .collect();
    let best = scored.iter().map(|(_, s)| *s).fold(0.0, f64::max);
    scored
        .into_iter()
        .filter(|(_, score)| best - score <= TYPO_MARGIN)
        .map(|(a, _)| a)
        .collect()
}

/// The account the question is about: the first reading (in order) that names exactly one
/// account; failing that, the first that names several (a choice); else unknown.
///
/// # Panics
/// Never for the readings [`super::parse_chat`] returns (never empty); an empty slice is a
/// caller bug.
pub fn resolve_account<'a>(
    readings: &'a [Reading],
    accounts: &'a [KnownAccount],
) -> AccountResolution<'a> {
    let mut ambiguous = None;
    for reading in readings {
        let mut found = candidates(&reading.account, accounts);
        match found.len() {
            0 => {}
            1 => {
                return AccountResolution::Found {
                    reading,
                    account: found[0],
                }
            }
            _ => {
                if ambiguous.is_none() {
                    found.sort_by(|a, b| {
                        a.name
                            .to_lowercase()
                            .cmp(&b.name.to_lowercase())
                            .then_with(|| a.account_id.cmp(&b.account_id))
                    });
                    found.truncate(MAX_CHOICES);
                    ambiguous = Some(AccountResolution::Ambiguous {
                        reading,
                        choices: found,
                    });
                }
            }
        }
    }
    ambiguous.unwrap_or(AccountResolution::Unknown {
        reading: readings
            .first()
            .expect("parse_chat never returns no reading"),
    })
}
