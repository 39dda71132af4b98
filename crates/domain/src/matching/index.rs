//! An index of a tenant's accounts, so that matching a customer only looks at
//! accounts that share an id, a domain or a name word with it — never all of
//! them.

use std::collections::HashMap;

use super::company_name::{similarity_upper_bound, CompanyName};
use super::decision::{AccountCandidate, AccountId, CustomerEvidence, MatchDecision};
use super::email::{classify_domain, normalize_website, EmailDomainClass, RegistrableDomain};
use super::MatchConfig;

/// Words shorter than this get no typo keys: one edit in a short word makes
/// another word (`acme` / `acne`).
const MIN_TYPO_KEY_LEN: usize = 5;

/// A name key shared by more accounts than this is a common word
/// (`software`, `solutions`): it is not used to find candidates while the
/// name has a rarer word.
const COMMON_KEY_POSTINGS: usize = 64;

/// One account, merged over duplicate ids.
#[derive(Debug, Clone)]
pub(crate) struct IndexedAccount {
    pub(crate) id: AccountId,
    /// Raw names with their normalised forms, sorted.
    pub(crate) names: Vec<(String, CompanyName)>,
}

/// A domain an account listed that matching will not use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredDomain {
    /// The account that listed it.
    pub account_id: AccountId,
    /// As entered.
    pub input: String,
    /// Why it is ignored.
    pub reason: String,
}

/// A tenant's accounts, indexed by id and external id, by registrable
/// domain, and by normalised name words (an inverted index), so that
/// [`AccountIndex::decide`] touches only plausible candidates.
///
/// Built once per tenant and reused for all its customers. The result does
/// not depend on the order of the accounts given to [`AccountIndex::build`];
/// accounts repeated under the same id are merged.
#[derive(Debug, Clone, Default)]
pub struct AccountIndex {
    accounts: Vec<IndexedAccount>,
    by_id: HashMap<String, usize>,
    by_external_id: HashMap<String, Vec<usize>>,
    by_domain: HashMap<RegistrableDomain, Vec<usize>>,
    /// Name words and their one-deletion variants → accounts.
    by_name_key: HashMap<String, Vec<usize>>,
    /// Whole names without spaces → accounts.
    by_compact_name: HashMap<String, Vec<usize>>,
    ignored_domains: Vec<IgnoredDomain>,
}

impl AccountIndex {
    /// Indexes `accounts`. Account domains are normalised to registrable
    /// domains; free-mail, disposable and invalid ones are left out (see
    /// [`AccountIndex::ignored_domains`]), so no link can ever go through them.
    pub fn build(accounts: &[AccountCandidate]) -> Self {
        let mut merged: HashMap<&AccountId, MergedAccount> = HashMap::new();
        for account in accounts {
            let entry = merged.entry(&account.id).or_default();
            entry.names.push(account.name.clone());
            entry.domains.extend(account.domains.iter().cloned());
            entry.external_ids.extend(
                account
                    .external_ids
                    .iter()
                    .map(|id| id.trim().to_owned())
                    .filter(|id| !id.is_empty()),
            );
        }
        let mut merged: Vec<(&AccountId, MergedAccount)> = merged.into_iter().collect();
        merged.sort_by(|a, b| a.0.cmp(b.0));

        let mut index = Self::default();
        for (position, (id, mut account)) in merged.into_iter().enumerate() {
            account.names.sort();
            account.names.dedup();
            account.domains.sort();
            account.domains.dedup();
            account.external_ids.sort();
            account.external_ids.dedup();

            index.by_id.insert(id.as_str().to_owned(), position);
            for external in account.external_ids {
                index
                    .by_external_id
                    .entry(external)
                    .or_default()
                    .push(position);
            }
            let mut domains: Vec<RegistrableDomain> = Vec::new();
            for input in account.domains {
                match normalize_website(&input).map(|d| (classify_domain(d.as_str()), d)) {
                    Ok((EmailDomainClass::Business(_), domain)) => domains.push(domain),
                    Ok((EmailDomainClass::FreeMail(d), _)) => {
                        index.ignored_domains.push(IgnoredDomain {
                            account_id: id.clone(),
                            input,
                            reason: format!("{d} is a free-mail domain"),
                        })
                    }
                    Ok((EmailDomainClass::Disposable(d), _)) => {
                        index.ignored_domains.push(IgnoredDomain {
                            account_id: id.clone(),
                            input,
                            reason: format!("{d} is a disposable-mail domain"),
                        })
                    }
                    Ok((EmailDomainClass::Invalid(err), _)) | Err(err) => {
                        index.ignored_domains.push(IgnoredDomain {
                            account_id: id.clone(),
                            input,
                            reason: err.to_string(),
                        })
                    }
                }
            }
            domains.sort();
            domains.dedup();
            for domain in domains {
                index.by_domain.entry(domain).or_default().push(position);
            }
            let mut names = Vec::new();
            for raw in account.names {
                let name = CompanyName::new(&raw);
                if name.is_empty() {
                    continue;
                }
                for key in name_keys(&name) {
                    let postings = index.by_name_key.entry(key).or_default();
                    if postings.last() != Some(&position) {
                        postings.push(position);
                    }
                }
                let postings = index.by_compact_name.entry(name.compact()).or_default();
                if postings.last() != Some(&position) {
                    postings.push(position);
                }
                names.push((raw, name));
            }
            index.accounts.push(IndexedAccount {
                id: id.clone(),
                names,
            });
        }
        index
    }

    /// Number of distinct accounts indexed.
    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    /// Whether no account is indexed.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    /// Account domains left out of matching, with the reason.
    pub fn ignored_domains(&self) -> &[IgnoredDomain] {
        &self.ignored_domains
    }

    /// Matches one Stripe customer (see [`super::rules`]).
    pub fn decide(&self, customer: &CustomerEvidence, config: &MatchConfig) -> MatchDecision {
        super::rules::decide_with_index(self, customer, config)
    }

    pub(crate) fn account(&self, position: usize) -> &IndexedAccount {
        &self.accounts[position]
    }

    /// Accounts whose id or one of whose external ids is exactly `value`,
    /// sorted, each once.
    pub(crate) fn by_id_or_external_id(&self, value: &str) -> Vec<usize> {
        let mut found: Vec<usize> = self.by_id.get(value).copied().into_iter().collect();
        if let Some(postings) = self.by_external_id.get(value) {
            found.extend(postings);
        }
        found.sort_unstable();
        found.dedup();
        found
    }

    /// Whether `value` is the id of an indexed account (not an external id).
    pub(crate) fn is_account_id(&self, value: &str, position: usize) -> bool {
        self.by_id.get(value) == Some(&position)
    }

    /// Accounts that listed `domain`, sorted.
    pub(crate) fn by_domain(&self, domain: &RegistrableDomain) -> &[usize] {
        self.by_domain.get(domain).map_or(&[], Vec::as_slice)
    }

    /// Accounts whose name could reach `min_score` against `name`: sharing a
    /// word, or a word one typo away, or the whole name without spaces.
    /// Sorted, each once.
    pub(crate) fn name_candidates(&self, name: &CompanyName, min_score: f64) -> Vec<usize> {
        let mut found: Vec<usize> = Vec::new();
        if let Some(postings) = self.by_compact_name.get(&name.compact()) {
            found.extend(postings);
        }
        let keys = name_keys(name);
        let lists: Vec<&Vec<usize>> = keys
            .iter()
            .filter_map(|k| self.by_name_key.get(k))
            .collect();
        let rare: Vec<&&Vec<usize>> = lists
            .iter()
            .filter(|l| l.len() <= COMMON_KEY_POSTINGS)
            .collect();
        if rare.is_empty() {
            // Only common words: an account must share all of them exactly.
            found.extend(self.sharing_all_words(name));
        } else {
            for postings in rare {
                found.extend(postings.iter());
            }
        }
        found.sort_unstable();
        found.dedup();
        let name_len: usize = name.tokens().iter().map(|t| t.chars().count()).sum();
        found.retain(|&position| {
            self.accounts[position].names.iter().any(|(_, other)| {
                let other_len = other.tokens().iter().map(|t| t.chars().count()).sum();
                other.compact() == name.compact()
                    || similarity_upper_bound(name_len, other_len) >= min_score
            })
        });
        found
    }

    fn sharing_all_words(&self, name: &CompanyName) -> Vec<usize> {
        let mut lists: Vec<&Vec<usize>> = Vec::new();
        for token in name.tokens() {
            match self.by_name_key.get(token) {
                Some(postings) => lists.push(postings),
                None => return Vec::new(),
            }
        }
        lists.sort_by_key(|l| l.len());
        let Some((first, rest)) = lists.split_first() else {
            return Vec::new();
        };
        first
            .iter()
            .copied()
            .filter(|p| rest.iter().all(|l| l.binary_search(p).is_ok()))
            .collect()
    }
}

#[derive(Default)]
struct MergedAccount {
    names: Vec<String>,
    domains: Vec<String>,
    external_ids: Vec<String>,
}

/// Every word of the name, plus, for words of at least
/// [`MIN_TYPO_KEY_LEN`] characters, each variant with one character deleted
/// (two words one edit apart share a key: the "symmetric delete" trick).
fn name_keys(name: &CompanyName) -> Vec<String> {
    let mut keys = Vec::new();
    for token in name.tokens() {
        keys.push(token.clone());
        let chars: Vec<char> = token.chars().collect();
        if chars.len() >= MIN_TYPO_KEY_LEN {
            for skip in 0..chars.len() {
                let variant: String = chars
                    .iter()
                    .enumerate()
                    .filter(|&(i, _)| i != skip)
                    .map(|(_, c)| *c)
                    .collect();
                keys.push(variant);
            }
        }
    }
    keys.sort_unstable();
    keys.dedup();
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(id: &str, name: &str, domains: &[&str]) -> AccountCandidate {
        AccountCandidate {
            id: AccountId::from(id),
            name: name.to_owned(),
            domains: domains.iter().map(|d| (*d).to_owned()).collect(),
            external_ids: Vec::new(),
        }
    }

    #[test]
    fn indexes_domains_normalised_and_skips_free_mail() {
        let index = AccountIndex::build(&[
            account(
                "a1",
                "Acme",
                &[
                    "https://www.Acme.com/about",
                    "gmail.com",
                    "not a domain",
                    "mailinator.com",
                ],
            ),
            account("a2", "Beta", &["eu.beta.co.uk"]),
        ]);
        assert_eq!(
            index.by_domain(&RegistrableDomain::parse("acme.com").unwrap()),
            &[0]
        );
        assert_eq!(
            index.by_domain(&RegistrableDomain::parse("beta.co.uk").unwrap()),
            &[1]
        );
        assert!(index
            .by_domain(&RegistrableDomain::parse("gmail.com").unwrap())
            .is_empty());
        let ignored: Vec<&str> = index
            .ignored_domains()
            .iter()
            .map(|d| d.input.as_str())
            .collect();
        assert_eq!(ignored, ["gmail.com", "mailinator.com", "not a domain"]);
    }

    #[test]
    fn merges_duplicate_ids_and_sorts_by_id() {
        let index = AccountIndex::build(&[
            account("b", "Beta", &["beta.com"]),
            account("a", "Acme", &["acme.com"]),
            account("b", "Beta Two", &["beta.io"]),
        ]);
        assert_eq!(index.len(), 2);
        assert_eq!(index.account(0).id.as_str(), "a");
        assert_eq!(index.account(1).names.len(), 2);
        assert_eq!(
            index.by_domain(&RegistrableDomain::parse("beta.io").unwrap()),
            &[1]
        );
    }

    #[test]
    fn finds_name_candidates_by_word_typo_and_compact_form() {
        let index = AccountIndex::build(&[
            account("a", "Acme Payments", &[]),
            account("b", "AcmeLabs", &[]),
            account("c", "Zenith", &[]),
        ]);
        let find = |raw: &str| index.name_candidates(&CompanyName::new(raw), 0.5);
        assert_eq!(find("Acme Paymnets Inc"), [0]);
        assert_eq!(find("Acme Labs"), [0, 1], "shares \"acme\" with both");
        assert_eq!(
            index.name_candidates(&CompanyName::new("Acme Labs"), 0.9),
            [1],
            "length bound"
        );
        assert_eq!(
            find("Acne"),
            Vec::<usize>::new(),
            "short words get no typo keys"
        );
        assert_eq!(find("Zenit"), [2]);
        assert_eq!(find("Zenitth"), [2]);
        assert!(find("Unrelated").is_empty());
    }

    #[test]
    fn common_words_alone_need_all_words_shared() {
        let mut accounts: Vec<AccountCandidate> = (0..100)
            .map(|i| {
                account(
                    &format!("s{i:03}"),
                    &format!("Name{i} Software Solutions"),
                    &[],
                )
            })
            .collect();
        accounts.push(account("x", "Software Solutions", &[]));
        accounts.push(account("y", "Software", &[]));
        let index = AccountIndex::build(&accounts);
        let found = index.name_candidates(&CompanyName::new("Software Solutions Ltd"), 0.9);
        let ids: Vec<&str> = found
            .iter()
            .map(|&p| index.account(p).id.as_str())
            .collect();
        assert_eq!(ids, ["x"]);
    }

    #[test]
    fn length_bound_prunes_hopeless_candidates() {
        let index = AccountIndex::build(&[
            account("a", "Acme", &[]),
            account("b", "Acme Global Industrial Holdings", &[]),
        ]);
        let found = index.name_candidates(&CompanyName::new("Acme"), 0.87);
        assert_eq!(found, [0]);
    }
}
