//! Email and website domains: parse, fold to the registrable domain, classify.
//!
//! Every domain leaves here lowercase ASCII, internationalised names in
//! punycode (`münchen.de` → `xn--mnchen-3ya.de`), so the same company always
//! produces the same key. Subdomains are folded to the *registrable* domain
//! (one label below the public suffix) with the compiled-in public suffix list
//! of the `psl` crate: `billing.acme.com` → `acme.com`,
//! `eu.acme.co.uk` → `acme.co.uk`, `acme.github.io` stays `acme.github.io`.
//!
//! Free-mail and disposable domains are recognised from compiled-in lists
//! (`data/free_email_domains.txt`, `data/disposable_email_domains.txt` and the
//! `mailchecker` crate's list): an address there says nothing about the
//! company, so [`classify_email`] never calls it [`EmailDomainClass::Business`].

use std::collections::HashSet;
use std::fmt;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

/// Longest domain name DNS allows, in bytes of its ASCII form.
const MAX_DOMAIN_LEN: usize = 253;
/// Longest DNS label, in bytes.
const MAX_LABEL_LEN: usize = 63;

/// Why an input does not yield a usable domain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// Nothing but whitespace.
    #[error("empty input")]
    Empty,
    /// Not of the form `local@domain`.
    #[error("{0:?} is not an email address")]
    NotAnEmail(String),
    /// An IP address where a domain name was expected.
    #[error("{0:?} is an IP address, not a domain name")]
    IpAddress(String),
    /// Not a syntactically valid (internationalised) domain name.
    #[error("{input:?} is not a valid domain name: {why}")]
    Malformed {
        /// The offending input (after trimming).
        input: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// Its top-level suffix is on no public suffix list (`acme.local`,
    /// `acme.con`).
    #[error("{0:?} does not end in a known public suffix")]
    UnknownSuffix(String),
    /// The whole name is a public suffix (`co.uk`): nobody registers it.
    #[error("{0:?} is a public suffix, not a registrable domain")]
    PublicSuffix(String),
}

/// A registrable domain ("eTLD+1"): lowercase ASCII, IDNs in punycode, e.g.
/// `acme.com`, `acme.co.uk`, `xn--mnchen-3ya.de`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RegistrableDomain(String);

impl RegistrableDomain {
    /// Normalises any host name (any case, Unicode or punycode, subdomains,
    /// trailing dot) to its registrable domain.
    pub fn parse(host: &str) -> Result<Self, DomainError> {
        registrable_domain(&normalize_host(host)?)
    }

    /// The domain, lowercase ASCII.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RegistrableDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for RegistrableDomain {
    type Error = DomainError;
    fn try_from(raw: String) -> Result<Self, DomainError> {
        Self::parse(&raw)
    }
}

impl From<RegistrableDomain> for String {
    fn from(domain: RegistrableDomain) -> String {
        domain.0
    }
}

/// What the domain of an email address tells about its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailDomainClass {
    /// A company's own domain: usable to match an account.
    Business(RegistrableDomain),
    /// A free-mail, ISP-mail or relay provider (gmail.com, yahoo.co.jp,
    /// privaterelay.appleid.com, …): never usable to match.
    FreeMail(RegistrableDomain),
    /// A disposable / throwaway provider (mailinator.com, …): never usable.
    Disposable(RegistrableDomain),
    /// Not a usable email address.
    Invalid(DomainError),
}

impl EmailDomainClass {
    /// The registrable domain when it may be used for matching.
    pub fn business_domain(&self) -> Option<&RegistrableDomain> {
        match self {
            Self::Business(domain) => Some(domain),
            _ => None,
        }
    }
}

/// The host part of an email address, normalised (lowercase ASCII/punycode,
/// no trailing dot) but *not* folded to the registrable domain.
///
/// Accepts surrounding whitespace, a `mailto:` prefix and the
/// `Name <addr@host>` form; rejects anything without a non-empty local part
/// and a valid domain (IP literals included).
pub fn email_host(email: &str) -> Result<String, DomainError> {
    let trimmed = email.trim();
    if trimmed.is_empty() {
        return Err(DomainError::Empty);
    }
    let mut address = trimmed;
    if let (Some(open), true) = (address.rfind('<'), address.ends_with('>')) {
        address = &address[open + 1..address.len() - 1];
    }
    if let Some(rest) = address
        .get(..7)
        .filter(|scheme| scheme.eq_ignore_ascii_case("mailto:"))
        .and_then(|_| address.get(7..))
    {
        address = rest;
    }
    let Some((local, host)) = address.trim().rsplit_once('@') else {
        return Err(DomainError::NotAnEmail(trimmed.to_owned()));
    };
    if local.is_empty() || local.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(DomainError::NotAnEmail(trimmed.to_owned()));
    }
    if host.trim().is_empty() {
        return Err(DomainError::NotAnEmail(trimmed.to_owned()));
    }
    normalize_host(host)
}

/// The registrable domain of an email address (`billing@eu.acme.co.uk` →
/// `acme.co.uk`), whatever its provider.
pub fn email_domain(email: &str) -> Result<RegistrableDomain, DomainError> {
    registrable_domain(&email_host(email)?)
}

/// Classifies the domain of an email address. Free-mail wins over
/// disposable when a domain is on both lists; both are unusable anyway.
pub fn classify_email(email: &str) -> EmailDomainClass {
    match email_host(email) {
        Ok(host) => classify_host(&host),
        Err(err) => EmailDomainClass::Invalid(err),
    }
}

/// Classifies a host name (email domain or website host) the same way as
/// [`classify_email`].
pub fn classify_domain(host: &str) -> EmailDomainClass {
    match normalize_host(host) {
        Ok(host) => classify_host(&host),
        Err(err) => EmailDomainClass::Invalid(err),
    }
}

/// Normalises what a CSCX user typed as an account's website or domain
/// (`https://www.Acme.com/about`, `acme.com`, `WWW.ACME.CO.UK:443`,
/// `sales@acme.com`) to its registrable domain (`acme.com`, `acme.co.uk`).
pub fn normalize_website(input: &str) -> Result<RegistrableDomain, DomainError> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(DomainError::Empty);
    }
    if !trimmed.contains("://") && trimmed.contains('@') {
        return email_domain(trimmed);
    }
    let with_scheme;
    let url_text = if trimmed.contains("://") {
        trimmed
    } else {
        with_scheme = format!("http://{trimmed}");
        &with_scheme
    };
    let url = url::Url::parse(url_text).map_err(|_| DomainError::Malformed {
        input: trimmed.to_owned(),
        why: "not a URL or domain name",
    })?;
    match url.host() {
        Some(url::Host::Domain(host)) => RegistrableDomain::parse(host),
        Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) => {
            Err(DomainError::IpAddress(trimmed.to_owned()))
        }
        None => Err(DomainError::Malformed {
            input: trimmed.to_owned(),
            why: "the URL has no host",
        }),
    }
}

/// Whether `host` (or a parent of it) is a free-mail, ISP-mail or relay
/// domain. `host` may be in any case, Unicode or punycode.
pub fn is_free_mail_domain(host: &str) -> bool {
    matches!(classify_domain(host), EmailDomainClass::FreeMail(_))
}

/// Whether `host` (or a parent of it) is a disposable-mail domain.
pub fn is_disposable_domain(host: &str) -> bool {
    matches!(classify_domain(host), EmailDomainClass::Disposable(_))
}

/// Lowercase ASCII form of a host name, validated label by label.
pub(crate) fn normalize_host(raw: &str) -> Result<String, DomainError> {
    let trimmed = raw.trim();
    let host = trimmed.strip_suffix('.').unwrap_or(trimmed);
    if host.is_empty() {
        return Err(DomainError::Empty);
    }
    let malformed = |why| DomainError::Malformed {
        input: trimmed.to_owned(),
        why,
    };
    if host.starts_with('[') {
        return Err(DomainError::IpAddress(trimmed.to_owned()));
    }
    let ascii = match url::Host::parse(host) {
        Ok(url::Host::Domain(ascii)) => ascii,
        Ok(url::Host::Ipv4(_) | url::Host::Ipv6(_)) => {
            return Err(DomainError::IpAddress(trimmed.to_owned()))
        }
        Err(_) => return Err(malformed("not a valid (internationalised) domain name")),
    };
    if ascii.len() > MAX_DOMAIN_LEN {
        return Err(malformed("longer than 253 bytes"));
    }
    let mut labels = 0;
    for label in ascii.split('.') {
        labels += 1;
        if label.is_empty() {
            return Err(malformed("empty label"));
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(malformed("label longer than 63 bytes"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(malformed("only letters, digits and '-' are allowed"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(malformed("a label starts or ends with '-'"));
        }
    }
    if labels < 2 {
        return Err(malformed("no dot: not a fully qualified domain"));
    }
    if ascii
        .rsplit('.')
        .next()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(DomainError::IpAddress(trimmed.to_owned()));
    }
    Ok(ascii)
}

/// Folds a normalised ASCII host to its registrable domain.
///
/// The `psl` list spells IDN suffixes in Unicode, so the lookup runs on the
/// Unicode form and the answer is mapped back, label for label, to ASCII.
fn registrable_domain(ascii: &str) -> Result<RegistrableDomain, DomainError> {
    let (unicode, _) = idna::domain_to_unicode(ascii);
    let Some(found) = psl::domain(unicode.as_bytes()) else {
        return Err(match psl::suffix(unicode.as_bytes()) {
            Some(suffix) if suffix.is_known() => DomainError::PublicSuffix(ascii.to_owned()),
            _ => DomainError::UnknownSuffix(ascii.to_owned()),
        });
    };
    if !found.suffix().is_known() {
        return Err(DomainError::UnknownSuffix(ascii.to_owned()));
    }
    let kept_labels = found.as_bytes().split(|&b| b == b'.').count();
    let ascii_labels: Vec<&str> = ascii.split('.').collect();
    let start = ascii_labels.len().saturating_sub(kept_labels);
    Ok(RegistrableDomain(ascii_labels[start..].join(".")))
}

fn classify_host(ascii: &str) -> EmailDomainClass {
    let registrable = match registrable_domain(ascii) {
        Ok(registrable) => registrable,
        Err(err) => return EmailDomainClass::Invalid(err),
    };
    if FREE_MAIL.contains(ascii, &registrable) {
        EmailDomainClass::FreeMail(registrable)
    } else if DISPOSABLE.contains(ascii, &registrable) {
        EmailDomainClass::Disposable(registrable)
    } else {
        EmailDomainClass::Business(registrable)
    }
}

/// A compiled-in provider list: exact domains (covering their subdomains)
/// and brands valid on any public suffix.
struct ProviderList {
    domains: HashSet<&'static str>,
    brands: HashSet<&'static str>,
}

impl ProviderList {
    fn parse(text: &'static str) -> Self {
        let mut list = Self {
            domains: HashSet::new(),
            brands: HashSet::new(),
        };
        for line in text.lines() {
            let entry = line.split('#').next().unwrap_or("").trim();
            if entry.is_empty() {
                continue;
            }
            match entry.strip_suffix(".*") {
                Some(brand) => list.brands.insert(brand),
                None => list.domains.insert(entry),
            };
        }
        list
    }

    /// Whether `host`, any parent of it down to `registrable`, or the brand
    /// of `registrable` is listed.
    fn contains(&self, host: &str, registrable: &RegistrableDomain) -> bool {
        let registrable = registrable.as_str();
        let mut candidate = host;
        loop {
            if self.domains.contains(candidate) {
                return true;
            }
            if candidate.len() <= registrable.len() {
                break;
            }
            match candidate.split_once('.') {
                Some((_, parent)) => candidate = parent,
                None => break,
            }
        }
        let brand = registrable.split('.').next().unwrap_or(registrable);
        self.brands.contains(brand)
    }
}

static FREE_MAIL: LazyLock<ProviderList> =
    LazyLock::new(|| ProviderList::parse(include_str!("../../data/free_email_domains.txt")));

static DISPOSABLE: LazyLock<ProviderList> = LazyLock::new(|| {
    let mut list = ProviderList::parse(include_str!("../../data/disposable_email_domains.txt"));
    list.domains.extend(mailchecker::blacklist());
    list
});

#[cfg(test)]
mod tests {
    use super::*;

    fn domain(raw: &str) -> RegistrableDomain {
        RegistrableDomain(raw.to_owned())
    }

    #[test]
    fn email_host_normalises_and_rejects() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("jane@acme.com", Ok("acme.com")),
            ("  Jane.Doe@ACME.Com  ", Ok("acme.com")),
            ("billing@EU.Acme.co.uk.", Ok("eu.acme.co.uk")),
            ("Jane Doe <jane@acme.com>", Ok("acme.com")),
            ("mailto:jane@acme.com", Ok("acme.com")),
            ("\"a@b\"@acme.com", Ok("acme.com")),
            ("jörg@müller.de", Ok("xn--mller-kva.de")),
            ("jorg@xn--mller-kva.de", Ok("xn--mller-kva.de")),
            ("jane@ＡＣＭＥ.com", Ok("acme.com")),
            ("", Err("empty")),
            ("   ", Err("empty")),
            ("acme.com", Err("not an email")),
            ("@acme.com", Err("not an email")),
            ("jane@", Err("not an email")),
            ("ja ne@acme.com", Err("not an email")),
            ("jane@acme", Err("no dot")),
            ("jane@acme..com", Err("empty label")),
            ("jane@-acme.com", Err("'-'")),
            ("jane@acme_corp.com", Err("")),
            ("jane@acme.com/x", Err("")),
            ("jane@[10.0.0.1]", Err("IP")),
            ("jane@10.0.0.1", Err("IP")),
        ];
        for (input, expected) in cases {
            let got = email_host(input);
            match (expected, &got) {
                (Ok(host), Ok(got)) => assert_eq!(got, host, "{input:?}"),
                (Err(fragment), Err(err)) => {
                    assert!(err.to_string().contains(fragment), "{input:?}: {err}")
                }
                _ => panic!("{input:?}: expected {expected:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn registrable_domain_folds_subdomains_with_the_public_suffix_list() {
        let cases = [
            ("acme.com", "acme.com"),
            ("billing.acme.com", "acme.com"),
            ("a.b.c.acme.com", "acme.com"),
            ("eu.acme.co.uk", "acme.co.uk"),
            ("acme.co.uk", "acme.co.uk"),
            ("shop.acme.com.au", "acme.com.au"),
            ("acme.co.jp", "acme.co.jp"),
            ("www.acme.de", "acme.de"),
            ("x.acme.github.io", "acme.github.io"),
            ("mail.xn--mller-kva.de", "xn--mller-kva.de"),
            ("www.müller.de", "xn--mller-kva.de"),
            ("пример.рф", "xn--e1afmkfd.xn--p1ai"),
            ("shop.пример.рф", "xn--e1afmkfd.xn--p1ai"),
            ("xn--e1afmkfd.xn--p1ai", "xn--e1afmkfd.xn--p1ai"),
            ("ACME.COM.", "acme.com"),
        ];
        for (host, expected) in cases {
            assert_eq!(
                RegistrableDomain::parse(host).unwrap().as_str(),
                expected,
                "{host}"
            );
        }
    }

    #[test]
    fn registrable_domain_rejects_suffixes_and_unknown_tlds() {
        assert!(matches!(
            RegistrableDomain::parse("co.uk"),
            Err(DomainError::PublicSuffix(_))
        ));
        assert!(matches!(
            RegistrableDomain::parse("com"),
            Err(DomainError::Malformed { .. })
        ));
        for host in ["acme.local", "acme.con", "acme.internal"] {
            assert!(
                matches!(
                    RegistrableDomain::parse(host),
                    Err(DomainError::UnknownSuffix(_))
                ),
                "{host}"
            );
        }
    }

    #[test]
    fn classifies_business_free_disposable_invalid() {
        use EmailDomainClass::*;
        let cases: &[(&str, EmailDomainClass)] = &[
            ("jane@acme.com", Business(domain("acme.com"))),
            ("jane@billing.acme.com", Business(domain("acme.com"))),
            ("jane@eu.acme.co.uk", Business(domain("acme.co.uk"))),
            ("jane@google.com", Business(domain("google.com"))),
            ("jane@apple.com", Business(domain("apple.com"))),
            ("jane@gmail.com", FreeMail(domain("gmail.com"))),
            ("Jane@GMAIL.COM", FreeMail(domain("gmail.com"))),
            ("jane@googlemail.com", FreeMail(domain("googlemail.com"))),
            ("jane@yahoo.com", FreeMail(domain("yahoo.com"))),
            ("jane@yahoo.co.jp", FreeMail(domain("yahoo.co.jp"))),
            ("jane@yahoo.fr", FreeMail(domain("yahoo.fr"))),
            ("jane@outlook.com", FreeMail(domain("outlook.com"))),
            ("jane@hotmail.co.uk", FreeMail(domain("hotmail.co.uk"))),
            ("jane@live.fr", FreeMail(domain("live.fr"))),
            ("jane@msn.com", FreeMail(domain("msn.com"))),
            ("jane@aol.com", FreeMail(domain("aol.com"))),
            ("jane@icloud.com", FreeMail(domain("icloud.com"))),
            ("jane@me.com", FreeMail(domain("me.com"))),
            ("jane@mac.com", FreeMail(domain("mac.com"))),
            (
                "x1@privaterelay.appleid.com",
                FreeMail(domain("appleid.com")),
            ),
            ("jane@proton.me", FreeMail(domain("proton.me"))),
            ("jane@protonmail.com", FreeMail(domain("protonmail.com"))),
            ("jane@gmx.de", FreeMail(domain("gmx.de"))),
            ("jane@gmx.at", FreeMail(domain("gmx.at"))),
            ("jane@web.de", FreeMail(domain("web.de"))),
            ("jane@mail.ru", FreeMail(domain("mail.ru"))),
            ("jane@yandex.ru", FreeMail(domain("yandex.ru"))),
            ("jane@yandex.kz", FreeMail(domain("yandex.kz"))),
            ("jane@qq.com", FreeMail(domain("qq.com"))),
            ("jane@163.com", FreeMail(domain("163.com"))),
            ("jane@126.com", FreeMail(domain("126.com"))),
            ("jane@naver.com", FreeMail(domain("naver.com"))),
            ("jane@zoho.com", FreeMail(domain("zoho.com"))),
            ("jane@fastmail.com", FreeMail(domain("fastmail.com"))),
            ("jane@hey.com", FreeMail(domain("hey.com"))),
            ("jane@tutanota.de", FreeMail(domain("tutanota.de"))),
            ("jane@tuta.io", FreeMail(domain("tuta.io"))),
            ("jane@comcast.net", FreeMail(domain("comcast.net"))),
            ("jane@orange.fr", FreeMail(domain("orange.fr"))),
            ("jane@libero.it", FreeMail(domain("libero.it"))),
            ("jane@mailinator.com", Disposable(domain("mailinator.com"))),
            (
                "jane@guerrillamail.com",
                Disposable(domain("guerrillamail.com")),
            ),
            (
                "jane@guerrillamail.info",
                Disposable(domain("guerrillamail.info")),
            ),
            (
                "jane@10minutemail.com",
                Disposable(domain("10minutemail.com")),
            ),
            (
                "jane@10minutemail.co.uk",
                Disposable(domain("10minutemail.co.uk")),
            ),
            ("jane@temp-mail.org", Disposable(domain("temp-mail.org"))),
            ("jane@yopmail.com", Disposable(domain("yopmail.com"))),
            ("jane@yopmail.fr", Disposable(domain("yopmail.fr"))),
            ("jane@ok.33mail.com", Disposable(domain("33mail.com"))),
        ];
        for (email, expected) in cases {
            assert_eq!(&classify_email(email), expected, "{email}");
        }
        assert!(matches!(
            classify_email("nope"),
            Invalid(DomainError::NotAnEmail(_))
        ));
        assert!(matches!(
            classify_email("a@acme.local"),
            Invalid(DomainError::UnknownSuffix(_))
        ));
    }

    #[test]
    fn brand_wildcards_need_the_exact_brand_label() {
        for email in [
            "a@yahoo-inc.com",
            "a@myyahoo.com",
            "a@gmailer.com",
            "a@livenation.com",
        ] {
            assert!(
                matches!(classify_email(email), EmailDomainClass::Business(_)),
                "{email}"
            );
        }
    }

    #[test]
    fn lists_are_large_and_well_formed() {
        assert!(FREE_MAIL.domains.len() + FREE_MAIL.brands.len() > 400);
        assert!(DISPOSABLE.domains.len() > 10_000);
        for entry in FREE_MAIL.domains.iter().chain(&FREE_MAIL.brands) {
            assert_eq!(entry.trim(), *entry);
            assert_eq!(entry.to_ascii_lowercase(), *entry);
        }
        // Every free-mail domain is itself a registrable domain or below one:
        // a public suffix in the list would swallow whole countries.
        for entry in &FREE_MAIL.domains {
            assert!(RegistrableDomain::parse(entry).is_ok(), "{entry}");
        }
    }

    #[test]
    fn normalises_website_inputs() {
        let cases = [
            ("https://www.Acme.com/about", "acme.com"),
            ("acme.com", "acme.com"),
            ("www.acme.com/", "acme.com"),
            ("  HTTP://WWW.ACME.CO.UK:8443/x?y#z  ", "acme.co.uk"),
            ("https://user:pw@app.acme.io/login", "acme.io"),
            ("sales@acme.com", "acme.com"),
            ("https://münchen.de", "xn--mnchen-3ya.de"),
            ("acme.com.", "acme.com"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                normalize_website(input).unwrap().as_str(),
                expected,
                "{input}"
            );
        }
        for bad in [
            "",
            "   ",
            "http://",
            "https://10.0.0.1/",
            "localhost",
            "acme",
            "http://co.uk",
        ] {
            assert!(normalize_website(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn free_mail_predicates() {
        assert!(is_free_mail_domain("GMAIL.com"));
        assert!(is_free_mail_domain("mx.gmail.com"));
        assert!(!is_free_mail_domain("acme.com"));
        assert!(is_disposable_domain("mailinator.com"));
        assert!(!is_disposable_domain("gmail.com"));
    }

    #[test]
    fn registrable_domain_serde_validates() {
        let parsed: RegistrableDomain = serde_json::from_str("\"Billing.Acme.com\"").unwrap();
        assert_eq!(parsed.as_str(), "acme.com");
        assert_eq!(serde_json::to_string(&parsed).unwrap(), "\"acme.com\"");
        assert!(serde_json::from_str::<RegistrableDomain>("\"co.uk\"").is_err());
    }
}
