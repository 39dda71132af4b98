//! Reading a chat text: which question it asks and which words name the account.
//!
//! A question is recognised by its words (MRR/ARR/revenue; failed/declined/overdue; status/
//! health/billing), the account by where it stands: after a preposition ("for", "of",
//! "about", …), as a possessive ("Acme's MRR"), or as the words left when every question and
//! filler word is removed ("Did Globex have failed payments?"). Every plausible split is kept
//! as a [`Reading`], so the tenant's own account names decide between them.

use serde::Serialize;

use super::{ChatCommand, ChatError, MAX_CHAT_CHARS};
use crate::risk::{parse_alert_command, AlertCommandError};

/// A question about an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Question {
    /// "What's the billing status for …?": subscriptions, MRR, health, next invoice, signals.
    BillingStatus,
    /// "Any failed payments for …?": failed attempts, unpaid invoices, dunning.
    FailedPayments,
    /// "Show MRR for …": MRR/ARR per currency and its movement.
    Mrr,
}

impl Question {
    /// The machine name, e.g. `"billing_status"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Question::BillingStatus => "billing_status",
            Question::FailedPayments => "failed_payments",
            Question::Mrr => "mrr",
        }
    }

    /// How to ask it, for error messages.
    pub fn example(self) -> &'static str {
        match self {
            Question::BillingStatus => "What's the billing status",
            Question::FailedPayments => "Any failed payments",
            Question::Mrr => "Show MRR",
        }
    }
}

/// One way to read a question: what is asked, about which account name (as typed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    /// What is asked.
    pub question: Question,
    /// The account's name or id as the user typed it.
    pub account: String,
}

/// A word of the text: as typed (outer punctuation trimmed) and as compared.
#[derive(Debug, Clone)]
struct Word {
    /// As typed, without surrounding punctuation or a possessive `'s`.
    raw: String,
    /// Lowercase, apostrophes removed.
    key: String,
    /// Ended in `'s` (or `'` after an `s`): "Acme's", "Acme Labs'".
    possessive: bool,
}

/// Contractions that end like a possessive but are not one.
const CONTRACTIONS: &[&str] = &[
    "whats", "thats", "hows", "whos", "wheres", "heres", "theres", "lets", "its", "whens",
];

fn words(text: &str) -> Vec<Word> {
    text.split_whitespace()
        .filter_map(|piece| {
            let trimmed = piece.trim_matches(|c: char| {
                !(c.is_alphanumeric() || c == '\'' || c == '’' || c == '&')
            });
            let folded: String = trimmed.replace('’', "'");
            let mut raw = folded.trim_matches('\'').to_owned();
            let plain: String = folded.to_lowercase().replace('\'', "");
            let mut possessive = false;
            if !CONTRACTIONS.contains(&plain.as_str()) {
                let lower = folded.to_lowercase();
                if lower.ends_with("'s") && folded.len() > 2 {
                    raw = folded[..folded.len() - 2].trim_matches('\'').to_owned();
                    possessive = true;
                } else if lower.ends_with("s'") {
                    possessive = true;
                }
            }
            let key = raw.to_lowercase().replace('\'', "");
            let key = if CONTRACTIONS.contains(&plain.as_str()) {
                plain
            } else {
                key
            };
            (!key.is_empty()).then_some(Word {
                raw,
                key,
                possessive,
            })
        })
        .collect()
}

/// The question a word asks, if any.
fn question_word(key: &str) -> Option<Question> {
    let question = match key {
        "mrr" | "mrrs" | "arr" | "arrs" | "revenue" | "recurring" => Question::Mrr,
        "failed" | "failing" | "fail" | "fails" | "failure" | "failures" | "declined"
        | "decline" | "declines" | "declining" | "bounced" | "bounce" | "bounces"
        | "unsuccessful" | "missed" | "overdue" | "unpaid" | "dunning" | "delinquent"
        | "delinquency" | "pastdue" | "retries" | "retrying" => Question::FailedPayments,
        "status" | "health" | "healthy" | "standing" | "billing" | "overview" | "summary"
        | "doing" | "state" | "situation" | "snapshot" => Question::BillingStatus,
        _ => return None,
    };
    Some(question)
}

/// Two-word questions: "past due", "how much … paying".
fn phrase_question(words: &[Word], index: usize) -> Option<Question> {
    let key = |i: usize| words.get(i).map(|w| w.key.as_str());
    match (key(index), key(index + 1)) {
        (Some("past"), Some("due")) => Some(Question::FailedPayments),
        (Some("how"), Some("much")) => words[index + 2..]
            .iter()
            .any(|w| {
                matches!(
                    w.key.as_str(),
                    "pay" | "pays" | "paying" | "spend" | "spends" | "spending" | "worth"
                )
            })
            .then_some(Question::Mrr),
        _ => None,
    }
}

/// Words that introduce the account.
fn is_marker(key: &str) -> bool {
    matches!(
        key,
        "for" | "of" | "about" | "on" | "at" | "regarding" | "re" | "with" | "from"
    )
}

/// Words a question is made of besides its question words; never part of a fallback name.
fn is_filler(key: &str) -> bool {
    matches!(
        key,
        "what"
            | "whats"
            | "which"
            | "is"
            | "are"
            | "was"
            | "were"
            | "the"
            | "a"
            | "an"
            | "any"
            | "there"
            | "theres"
            | "show"
            | "me"
            | "us"
            | "tell"
            | "give"
            | "get"
            | "display"
            | "list"
            | "how"
            | "hows"
            | "much"
            | "does"
            | "do"
            | "did"
            | "has"
            | "have"
            | "had"
            | "been"
            | "current"
            | "currently"
            | "latest"
            | "recent"
            | "recently"
            | "lately"
            | "please"
            | "pls"
            | "can"
            | "could"
            | "would"
            | "you"
            | "i"
            | "we"
            | "see"
            | "check"
            | "look"
            | "up"
            | "our"
            | "my"
            | "their"
            | "its"
            | "it"
            | "and"
            | "or"
            | "payment"
            | "payments"
            | "invoice"
            | "invoices"
            | "charge"
            | "charges"
            | "card"
            | "cards"
            | "in"
            | "last"
            | "this"
            | "month"
            | "months"
            | "year"
            | "days"
            | "now"
            | "today"
            | "so"
            | "far"
            | "yet"
            | "some"
            | "hey"
            | "hi"
            | "thanks"
            | "monthly"
            | "annual"
            | "yearly"
            | "pay"
            | "pays"
            | "paying"
            | "spend"
            | "spends"
            | "spending"
            | "worth"
            | "due"
            | "past"
            | "like"
            | "looking"
            | "going"
            | "quick"
            | "whole"
            | "account"
            | "customer"
            | "client"
            | "problems"
            | "issues"
            | "open"
            | "outstanding"
    )
}

/// Words a name does not end with: "for Acme lately", "for Acme this month".
fn is_trailing_filler(key: &str) -> bool {
    matches!(
        key,
        "lately"
            | "recently"
            | "now"
            | "today"
            | "please"
            | "pls"
            | "currently"
            | "yet"
            | "thanks"
            | "so"
            | "far"
            | "this"
            | "last"
            | "past"
            | "month"
            | "week"
            | "quarter"
            | "year"
            | "days"
            | "in"
            | "the"
            | "account"
            | "customer"
            | "client"
            | "then"
    ) || key.chars().all(|c| c.is_ascii_digit())
}

/// The question the words ask (failed payments before MRR before status, so "the MRR
/// status" is MRR and "billing failures" failed payments); none when they ask nothing.
fn question_of(words: &[Word]) -> Option<Question> {
    let mut found: Vec<Question> = Vec::new();
    for (index, word) in words.iter().enumerate() {
        found.extend(question_word(&word.key));
        found.extend(phrase_question(words, index));
    }
    [
        Question::FailedPayments,
        Question::Mrr,
        Question::BillingStatus,
    ]
    .into_iter()
    .find(|q| found.contains(q))
}

fn joined(words: &[Word]) -> String {
    words
        .iter()
        .map(|w| w.raw.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The name as typed, and without leading "the" / trailing fillers when those differ.
fn name_variants(words: &[Word]) -> Vec<String> {
    let mut variants = Vec::new();
    if words.is_empty() {
        return variants;
    }
    variants.push(joined(words));
    let mut start = 0;
    while start < words.len() && words[start].key == "the" {
        start += 1;
    }
    let mut end = words.len();
    while end > start && is_trailing_filler(&words[end - 1].key) {
        end -= 1;
    }
    if end > start && (start, end) != (0, words.len()) {
        variants.push(joined(&words[start..end]));
    }
    variants
}

fn push(readings: &mut Vec<Reading>, question: Question, account: String) {
    if !readings
        .iter()
        .any(|r| r.account == account && r.question == question)
    {
        readings.push(Reading { question, account });
    }
}

/// Every plausible reading of a question, best first; empty when it asks nothing.
fn readings(words: &[Word]) -> Result<Vec<Reading>, ChatError> {
    let Some(overall) = question_of(words) else {
        return Err(ChatError::NotUnderstood);
    };
    let mut readings = Vec::new();
    // After a marker whose question part asks something: earliest first, so "MRR for Bank
    // of America" is tried whole before "America".
    for (index, word) in words.iter().enumerate() {
        if !is_marker(&word.key) {
            continue;
        }
        if let Some(question) = question_of(&words[..index]) {
            for name in name_variants(&words[index + 1..]) {
                push(&mut readings, question, name);
            }
        }
    }
    // A possessive and the name words before it: "What is Acme Corp's MRR?".
    for (index, word) in words.iter().enumerate() {
        if !word.possessive {
            continue;
        }
        let mut start = index;
        while start > 0 && is_name_word(&words[start - 1].key) {
            start -= 1;
        }
        if !is_name_word(&word.key) && start == index {
            continue;
        }
        let rest: Vec<Word> = words[..start]
            .iter()
            .chain(&words[index + 1..])
            .cloned()
            .collect();
        let question = question_of(&rest).unwrap_or(overall);
        for name in name_variants(&words[start..=index]) {
            push(&mut readings, question, name);
        }
        // Names made of question words too ("Revenue Labs' MRR"), tried after.
        let mut wide = start;
        while wide > 0 && !is_filler(&words[wide - 1].key) && !is_marker(&words[wide - 1].key) {
            wide -= 1;
        }
        if wide < start {
            let rest: Vec<Word> = words[..wide]
                .iter()
                .chain(&words[index + 1..])
                .cloned()
                .collect();
            if let Some(question) = question_of(&rest) {
                for name in name_variants(&words[wide..=index]) {
                    push(&mut readings, question, name);
                }
            }
        }
    }
    // Whatever is left once question and filler words are gone: "Did Globex have failed
    // payments?", "acme mrr"; longest run first.
    let mut runs: Vec<&[Word]> = words
        .split(|w| !is_name_word(&w.key))
        .filter(|run| !run.is_empty())
        .collect();
    runs.sort_by_key(|run| std::cmp::Reverse(run.len()));
    for run in runs {
        for name in name_variants(run) {
            push(&mut readings, overall, name);
        }
    }
    readings.retain(|r| !r.account.trim().is_empty());
    if readings.is_empty() {
        return Err(ChatError::NoAccount(overall));
    }
    Ok(readings)
}

fn is_name_word(key: &str) -> bool {
    question_word(key).is_none() && !is_filler(key) && !is_marker(key)
}

/// Parses a chat text (see the module docs).
pub fn parse_chat(text: &str) -> Result<ChatCommand, ChatError> {
    if text.chars().count() > MAX_CHAT_CHARS {
        return Err(ChatError::TooLong);
    }
    let words = words(text);
    if words.is_empty() {
        return Err(ChatError::Empty);
    }
    match parse_alert_command(text) {
        Ok(draft) => return Ok(ChatCommand::Alert(draft)),
        Err(AlertCommandError::NotAnAlertCommand) => {}
        // "Tell me the MRR for Acme" starts like an alert command but is a question.
        Err(alert_error) => {
            return readings(&words)
                .map(|readings| ChatCommand::Ask { readings })
                .map_err(|_| ChatError::Alert(alert_error));
        }
    }
    readings(&words).map(|readings| ChatCommand::Ask { readings })
}
