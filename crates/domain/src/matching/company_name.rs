//! Company names: normalisation and similarity.
//!
//! # Normalisation ([`CompanyName::new`])
//!
//! 1. Unicode NFKD, combining marks dropped (`Müller` → `muller`,
//!    `Société` → `societe`, full-width and ligature forms folded), letters
//!    that do not decompose folded by hand (`ß` → `ss`, `æ` → `ae`,
//!    `ø` → `o`, `ł` → `l`, …); other scripts are kept as they are.
//! 2. Lowercase; `&` → `and`; apostrophes dropped (`McDonald's` →
//!    `mcdonalds`); any other non-alphanumeric character is a word break.
//! 3. Legal forms are stripped from the end, repeatedly, longest first
//!    (`Acme Co., Ltd.` → `acme`, `Acme GmbH & Co. KG` → `acme`), from the
//!    list in `data/legal_suffixes.txt`; a leading `the` and a few legal forms
//!    written first (`PT`, `UAB`, `SIA`, `OOO`) go too. At least one word is
//!    always kept, and meaningful words stay (`Acme Labs` ≠ `Acme`).
//!
//! # Similarity ([`CompanyName::similarity`])
//!
//! A score in `[0, 1]`, symmetric, 1.0 for names equal after normalisation
//! (or equal once spaces are removed: `Acme Labs` / `AcmeLabs`). Otherwise
//! words are paired one-to-one, best pairs first, by normalised
//! Damerau-Levenshtein similarity (`strsim`); a pair counts only when at least
//! [`WORD_MATCH_FLOOR`] similar (a typo, not a different word), and the score
//! is the length-weighted share of both names covered by pairs. Unpaired
//! words lower it, so `Acme Labs` vs `Acme` scores 0.67, and word order does
//! not matter.

use std::cmp::Ordering;
use std::sync::LazyLock;

use unicode_normalization::char::{decompose_compatible, is_combining_mark};
use unicode_normalization::UnicodeNormalization;

/// Two words below this similarity are different words, not a typo.
pub const WORD_MATCH_FLOOR: f64 = 0.8;

/// A normalised company name: its words, in order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CompanyName {
    tokens: Vec<String>,
}

impl CompanyName {
    /// Normalises a raw company name (see the module docs).
    pub fn new(raw: &str) -> Self {
        let folded = fold_text(raw);
        let mut tokens: Vec<String> = folded.split_whitespace().map(str::to_owned).collect();
        strip_legal_forms(&mut tokens);
        Self { tokens }
    }

    /// The normalised words.
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    /// The normalised words joined by single spaces.
    pub fn normalized(&self) -> String {
        self.tokens.join(" ")
    }

    /// The normalised words joined without spaces (`acmelabs`).
    pub fn compact(&self) -> String {
        self.tokens.concat()
    }

    /// Whether nothing is left to compare.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Total length in characters of all words (spaces not counted).
    fn char_len(&self) -> usize {
        self.tokens.iter().map(|t| t.chars().count()).sum()
    }

    /// Similarity in `[0, 1]`; 0 when either name is empty.
    pub fn similarity(&self, other: &CompanyName) -> f64 {
        if self.is_empty() || other.is_empty() {
            return 0.0;
        }
        if self.tokens == other.tokens || self.compact() == other.compact() {
            return 1.0;
        }
        let (len_a, len_b) = (self.char_len(), other.char_len());
        // Each pair contributes at most 2·min(len) of the words it joins.
        if similarity_upper_bound(len_a, len_b) == 0.0 {
            return 0.0;
        }
        let mut pairs: Vec<(f64, &str, &str)> = Vec::new();
        for a in &self.tokens {
            for b in &other.tokens {
                let sim = word_similarity(a, b);
                if sim >= WORD_MATCH_FLOOR {
                    // Store each pair in a side-independent order so that
                    // similarity(a, b) and similarity(b, a) pick the same pairs
                    // and add them up in the same order.
                    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
                    pairs.push((sim, lo, hi));
                }
            }
        }
        pairs.sort_by(|x, y| {
            y.0.partial_cmp(&x.0)
                .unwrap_or(Ordering::Equal)
                .then_with(|| x.1.cmp(y.1))
                .then_with(|| x.2.cmp(y.2))
        });
        let mut used_a = vec![false; self.tokens.len()];
        let mut used_b = vec![false; other.tokens.len()];
        let mut covered = 0.0;
        for (sim, lo, hi) in pairs {
            // The pair is (lo, hi) in one of the two orientations; find an
            // unused occurrence of each word on its side.
            let pick = |tokens: &[String], used: &[bool], word: &str| {
                tokens
                    .iter()
                    .enumerate()
                    .position(|(i, t)| !used[i] && t == word)
            };
            let chosen = match (
                pick(&self.tokens, &used_a, lo),
                pick(&other.tokens, &used_b, hi),
            ) {
                (Some(i), Some(j)) => Some((i, j)),
                _ => match (
                    pick(&self.tokens, &used_a, hi),
                    pick(&other.tokens, &used_b, lo),
                ) {
                    (Some(i), Some(j)) => Some((i, j)),
                    _ => None,
                },
            };
            if let Some((i, j)) = chosen {
                used_a[i] = true;
                used_b[j] = true;
                let lens = self.tokens[i].chars().count() + other.tokens[j].chars().count();
                covered += sim * lens as f64;
            }
        }
        (covered / (len_a + len_b) as f64).clamp(0.0, 1.0)
    }
}

/// The best [`CompanyName::similarity`] two names of these lengths (in
/// characters) can reach without being equal: a word pair of lengths `x`,
/// `y` scores at most `min/max`, so it covers at most `2·min(x, y)`.
pub(crate) fn similarity_upper_bound(len_a: usize, len_b: usize) -> f64 {
    if len_a == 0 || len_b == 0 {
        return 0.0;
    }
    (2 * len_a.min(len_b)) as f64 / (len_a + len_b) as f64
}

/// Normalises a raw company name to its words joined by single spaces.
pub fn normalize_company_name(raw: &str) -> String {
    CompanyName::new(raw).normalized()
}

/// Similarity in `[0, 1]` of two raw company names (see the module docs).
pub fn company_name_similarity(a: &str, b: &str) -> f64 {
    CompanyName::new(a).similarity(&CompanyName::new(b))
}

fn word_similarity(a: &str, b: &str) -> f64 {
    if a == b {
        1.0
    } else {
        strsim::normalized_damerau_levenshtein(a, b)
    }
}

/// Steps 1 and 2 of the normalisation: accents, case, punctuation.
pub(crate) fn fold_text(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let push = |c: char, out: &mut String| {
        if is_combining_mark(c) {
            return;
        }
        match c {
            '&' => out.push_str(" and "),
            '\'' | '’' | '‘' | 'ʼ' | '`' | '´' => {}
            'ß' => out.push_str("ss"),
            'æ' => out.push_str("ae"),
            'œ' => out.push_str("oe"),
            'ø' => out.push('o'),
            'ł' => out.push('l'),
            'đ' | 'ð' => out.push('d'),
            'þ' => out.push_str("th"),
            'ı' => out.push('i'),
            'ħ' => out.push('h'),
            c if c.is_alphanumeric() => out.push(c),
            _ => out.push(' '),
        }
    };
    for c in raw.nfkd() {
        if is_combining_mark(c) {
            continue;
        }
        for lower in c.to_lowercase() {
            // Lowercasing can produce characters that decompose further
            // (`İ` → `i̇`); decompose again so the result is a fixed point.
            decompose_compatible(lower, |d| push(d, &mut out));
        }
    }
    out
}

/// Legal forms as token sequences, longest first.
static LEGAL_SUFFIXES: LazyLock<Vec<Vec<String>>> = LazyLock::new(|| {
    let mut forms: Vec<Vec<String>> = include_str!("../../data/legal_suffixes.txt")
        .lines()
        .map(|line| line.split('#').next().unwrap_or("").trim())
        .filter(|line| !line.is_empty())
        .map(|line| {
            fold_text(line)
                .split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|tokens: &Vec<String>| !tokens.is_empty())
        .flat_map(|tokens| {
            // "S.p.A." is also written "SpA": accept the joined form too.
            let joined = vec![tokens.concat()];
            [tokens, joined]
        })
        .collect();
    forms.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    forms.dedup();
    forms
});

/// Legal forms written before the name (`PT Acme Tbk`, `UAB Acme`).
const LEGAL_PREFIXES: &[&str] = &[
    "the", "pt", "uab", "sia", "ooo", "zao", "oao", "pao", "ооо", "зао", "оао", "пао",
];

fn strip_legal_forms(tokens: &mut Vec<String>) {
    loop {
        let mut changed = false;
        if tokens.len() > 1 && LEGAL_PREFIXES.contains(&tokens[0].as_str()) {
            tokens.remove(0);
            changed = true;
        }
        if tokens.len() > 1 && tokens.last().is_some_and(|t| t == "and") {
            tokens.pop();
            changed = true;
        }
        for form in LEGAL_SUFFIXES.iter() {
            if tokens.len() > form.len() && tokens.ends_with(form) {
                tokens.truncate(tokens.len() - form.len());
                changed = true;
                break;
            }
        }
        if !changed {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_punctuation_accents_and_legal_forms() {
        let cases = [
            ("Acme Inc", "acme"),
            ("ACME, Inc.", "acme"),
            ("Acme Incorporated", "acme"),
            ("Acme Corp.", "acme"),
            ("Acme Corporation", "acme"),
            ("Acme LLC", "acme"),
            ("Acme L.L.C.", "acme"),
            ("Acme Ltd", "acme"),
            ("Acme Limited", "acme"),
            ("Acme GmbH", "acme"),
            ("Acme AG", "acme"),
            ("Acme SA", "acme"),
            ("Acme S.A.", "acme"),
            ("Acme SAS", "acme"),
            ("Acme SARL", "acme"),
            ("Acme BV", "acme"),
            ("Acme B.V.", "acme"),
            ("Acme NV", "acme"),
            ("Acme Oy", "acme"),
            ("Acme AB", "acme"),
            ("Acme AS", "acme"),
            ("Acme A/S", "acme"),
            ("Acme ApS", "acme"),
            ("Acme Pty Ltd", "acme"),
            ("Acme PLC", "acme"),
            ("Acme Co", "acme"),
            ("Acme Company", "acme"),
            ("Acme KK", "acme"),
            ("Acme K.K.", "acme"),
            ("Acme SpA", "acme"),
            ("Acme S.p.A.", "acme"),
            ("Acme SRL", "acme"),
            ("Acme Srl", "acme"),
            ("Acme Sp. z o.o.", "acme"),
            ("Acme LLP", "acme"),
            ("Acme LP", "acme"),
            ("Acme Co., Ltd.", "acme"),
            ("Acme GmbH & Co. KG", "acme"),
            ("Acme S.A. de C.V.", "acme"),
            ("Acme Sdn. Bhd.", "acme"),
            ("Acme Pvt. Ltd.", "acme"),
            ("Acme AB (publ)", "acme"),
            ("The Acme Company", "acme"),
            ("PT Acme Tbk", "acme"),
            ("Acme Labs", "acme labs"),
            ("Acme Labs, Inc.", "acme labs"),
            ("Acme Holdings Group", "acme holdings group"),
            ("Johnson & Johnson", "johnson and johnson"),
            ("Smith & Co", "smith"),
            ("McDonald's Corporation", "mcdonalds"),
            ("Müller GmbH", "muller"),
            ("Société Générale SA", "societe generale"),
            ("Nestlé S.A.", "nestle"),
            ("Straße AG", "strasse"),
            ("Ørsted A/S", "orsted"),
            ("Łódź Sp. z o.o.", "lodz"),
            ("ＡＣＭＥ　Ｉｎｃ", "acme"),
            ("  Acme\t\n Inc  ", "acme"),
            ("Booking.com B.V.", "booking com"),
            ("Яндекс ООО", "яндекс"),
            ("ООО Ромашка", "ромашка"),
            ("トヨタ自動車株式会社", "トヨタ自動車株式会社"),
            ("Inc", "inc"),
            ("Inc.", "inc"),
            ("The Company", "company"),
            ("", ""),
            ("!!!", ""),
        ];
        for (raw, expected) in cases {
            assert_eq!(normalize_company_name(raw), expected, "{raw:?}");
        }
    }

    #[test]
    fn similarity_table() {
        // (a, b, lowest, highest)
        let cases = [
            ("Acme Inc", "ACME, Inc.", 1.0, 1.0),
            ("Acme Inc", "Acme Incorporated", 1.0, 1.0),
            ("Société Générale SA", "Societe Generale", 1.0, 1.0),
            ("Müller GmbH", "Muller", 1.0, 1.0),
            ("Acme Labs", "AcmeLabs Inc", 1.0, 1.0),
            ("Generale Societe", "Societe Generale", 1.0, 1.0),
            ("Acme Labs", "Acme Inc", 0.6, 0.7),
            ("Acme", "Acme Holdings Group", 0.0, 0.4),
            ("Acme Payments", "Acme Paymnets", 0.91, 0.92),
            ("Acme Payments", "Acme Pavements", 0.3, 0.35),
            ("Acme", "Acne", 0.0, 0.0),
            ("Acme", "Zenith", 0.0, 0.0),
            ("Stripe", "Stripe Atlas", 0.5, 0.75),
            ("Acme", "", 0.0, 0.0),
            ("", "", 0.0, 0.0),
        ];
        for (a, b, lo, hi) in cases {
            let score = company_name_similarity(a, b);
            assert!((lo..=hi).contains(&score), "{a:?} vs {b:?}: {score}");
            assert_eq!(
                score,
                company_name_similarity(b, a),
                "{a:?} vs {b:?} symmetric"
            );
        }
    }

    #[test]
    fn similarity_never_exceeds_the_length_bound() {
        let pairs = [
            ("acme labs", "acme"),
            ("international business", "intl business"),
        ];
        for (a, b) in pairs {
            let (a, b) = (CompanyName::new(a), CompanyName::new(b));
            let bound = similarity_upper_bound(a.char_len(), b.char_len());
            assert!(a.similarity(&b) <= bound + 1e-12);
        }
    }

    #[test]
    fn repeated_words_pair_once() {
        let score = company_name_similarity("Acme Acme", "Acme");
        assert!((score - 2.0 * 4.0 / 12.0).abs() < 1e-12, "{score}");
    }

    #[test]
    fn legal_form_list_is_normalised_and_longest_first() {
        let forms = &*LEGAL_SUFFIXES;
        assert!(forms.len() > 100);
        assert!(forms.windows(2).all(|w| w[0].len() >= w[1].len()));
        assert!(forms.iter().any(|f| f == &["sp", "z", "o", "o"]));
        assert!(forms.iter().any(|f| f == &["spa"]));
    }
}
