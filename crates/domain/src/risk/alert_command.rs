//! The chat command "alert me on payment failures", parsed into an alert
//! rule.
//!
//! The command starts with "alert me" (or "notify me", "let me know", "tell
//! me", "ping me", "warn me"), then says what to alert on, optionally with
//! a severity ("critical", "high", "medium"), whose accounts ("for all
//! accounts"; default: the CSM's own) and how ("hourly digest"; default:
//! immediately). Several subjects are joined with "and", "or" or commas.
//! Any word it does not know is rejected with the list of what it
//! understands: a misread rule is worse than a question back.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{AlertRule, AlertScope, DigestMode, Severity, SignalKind};

/// What the command understands, for error messages and help.
pub const ALERT_COMMAND_HELP: &str = "I understand \"alert me on …\" with: payment failures, \
dunning (past due, retries), payment action required (3-D Secure), expiring cards, expired cards, \
card problems, downgrades, cancellation requests, cancellations (requests and canceled \
subscriptions), canceled subscriptions, disputes (chargebacks), uncollectible invoices \
(write-offs), payment problems, everything; optionally a severity (critical, high, medium), \
\"for all accounts\" (default: your accounts) and \"hourly digest\" (default: immediately). \
Example: \"alert me on critical payment failures and disputes for all accounts\".";

/// A parsed alert command: an [`AlertRule`] without its CSM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRuleDraft {
    /// Kinds, in [`SignalKind::ALL`] order; empty = every kind.
    pub kinds: Vec<SignalKind>,
    /// Lowest severity (Low when none was said).
    pub min_severity: Severity,
    /// Whose accounts (Mine when not said).
    pub scope: AlertScope,
    /// Delivery (Immediate when not said).
    pub digest: DigestMode,
}

impl AlertRuleDraft {
    /// The rule for the CSM who typed the command.
    pub fn into_rule(self, csm_user_id: impl Into<String>) -> AlertRule {
        AlertRule {
            csm_user_id: csm_user_id.into(),
            kinds: self.kinds,
            min_severity: self.min_severity,
            scope: self.scope,
            digest: self.digest,
        }
    }

    /// A confirmation to echo back, e.g. "Alerting you on payment failures
    /// (any severity) for your accounts, immediately."
    pub fn describe(&self) -> String {
        let kinds = if self.kinds.is_empty() {
            "every signal".to_owned()
        } else {
            self.kinds
                .iter()
                .map(|kind| label(*kind))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let severity = match self.min_severity {
            Severity::Low => "any severity".to_owned(),
            other => format!("{other} or above"),
        };
        let scope = match self.scope {
            AlertScope::Mine => "your accounts",
            AlertScope::Tenant => "all accounts",
        };
        let digest = match self.digest {
            DigestMode::Immediate => "immediately",
            DigestMode::Hourly => "in an hourly digest",
        };
        format!("Alerting you on {kinds} ({severity}) for {scope}, {digest}.")
    }
}

fn label(kind: SignalKind) -> &'static str {
    match kind {
        SignalKind::PaymentFailed => "payment failures",
        SignalKind::DunningInProgress => "dunning",
        SignalKind::PaymentActionRequired => "payment action required",
        SignalKind::CardExpiring => "expiring cards",
        SignalKind::CardExpired => "expired cards",
        SignalKind::SubscriptionDowngrade => "downgrades",
        SignalKind::CancellationRequested => "cancellation requests",
        SignalKind::SubscriptionCanceled => "canceled subscriptions",
        SignalKind::DisputeOpened => "disputes",
        SignalKind::InvoiceUncollectible => "uncollectible invoices",
    }
}

/// Why a chat text is not an alert rule. Every message ends with
/// [`ALERT_COMMAND_HELP`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertCommandError {
    /// The text does not start like an alert command.
    #[error("That is not an alert command. {ALERT_COMMAND_HELP}")]
    NotAnAlertCommand,
    /// The command names nothing to alert on.
    #[error("What should I alert you on? {ALERT_COMMAND_HELP}")]
    NothingToAlertOn,
    /// Words it does not understand.
    #[error("I did not understand {}. {ALERT_COMMAND_HELP}", quoted(.words))]
    Unrecognised {
        /// The words, lowercased, in order.
        words: Vec<String>,
    },
    /// Two different values for one setting.
    #[error("You asked for both {first} and {second} {what}; say only one. {ALERT_COMMAND_HELP}")]
    Conflicting {
        /// The setting: `"severity"`, `"accounts"` or `"delivery"`.
        what: &'static str,
        /// One value.
        first: &'static str,
        /// The other.
        second: &'static str,
    },
}

fn quoted(words: &[String]) -> String {
    words
        .iter()
        .map(|w| format!("\"{w}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Concept {
    Fail,
    Payment,
    Dunning,
    Action,
    Card,
    Expiring,
    Expired,
    Downgrade,
    Cancel,
    Canceled,
    CancelRequest,
    Request,
    Dispute,
    Uncollectible,
    Trouble,
    Everything,
    Subscription,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Concept(Concept),
    And,
}

const TRIGGERS: &[&[&str]] = &[
    &["send", "me", "an", "alert"],
    &["send", "me", "alerts"],
    &["let", "me", "know"],
    &["alert", "me"],
    &["notify", "me"],
    &["ping", "me"],
    &["warn", "me"],
    &["tell", "me"],
    &["message", "me"],
    &["alert"],
    &["notify"],
];

const DROPPED: &[&[&str]] = &[
    &["and", "above"],
    &["or", "above"],
    &["and", "higher"],
    &["or", "higher"],
    &["or", "worse"],
    &["at", "least"],
    &["thank", "you"],
];

const TENANT: &[&[&str]] = &[
    &["all", "of", "the", "accounts"],
    &["all", "of", "our", "accounts"],
    &["all", "the", "accounts"],
    &["all", "our", "accounts"],
    &["all", "accounts"],
    &["all", "customers"],
    &["all", "the", "customers"],
    &["every", "account"],
    &["every", "customer"],
    &["each", "account"],
    &["any", "account"],
    &["any", "customer"],
    &["the", "whole", "team"],
    &["the", "entire", "team"],
    &["whole", "team"],
    &["entire", "team"],
    &["the", "whole", "tenant"],
    &["whole", "tenant"],
    &["the", "tenant"],
    &["tenant", "wide"],
    &["company", "wide"],
    &["org", "wide"],
    &["everyones", "accounts"],
    &["everybodys", "accounts"],
    &["everyone"],
    &["everybody"],
    &["all", "csms"],
];

const MINE: &[&[&str]] = &[
    &["my", "book", "of", "business"],
    &["my", "own", "accounts"],
    &["my", "accounts"],
    &["my", "customers"],
    &["my", "book"],
    &["my", "portfolio"],
    &["mine"],
];

const HOURLY: &[&[&str]] = &[
    &["an", "hourly", "digest"],
    &["hourly", "digest"],
    &["a", "digest"],
    &["once", "an", "hour"],
    &["once", "per", "hour"],
    &["every", "hour"],
    &["in", "batches"],
    &["hourly"],
    &["digest"],
    &["batched"],
];

const IMMEDIATE: &[&[&str]] = &[
    &["in", "real", "time"],
    &["as", "they", "happen"],
    &["as", "it", "happens"],
    &["right", "away"],
    &["real", "time"],
    &["at", "once"],
    &["immediately"],
    &["instantly"],
    &["realtime"],
    &["asap"],
];

const SEVERITIES: &[(&[&str], Severity)] = &[
    (&["critical", "severity"], Severity::Critical),
    (&["high", "severity"], Severity::High),
    (&["high", "priority"], Severity::High),
    (&["medium", "severity"], Severity::Medium),
    (&["low", "severity"], Severity::Low),
    (&["any", "severity"], Severity::Low),
    (&["all", "severities"], Severity::Low),
    (&["critical"], Severity::Critical),
    (&["high"], Severity::High),
    (&["urgent"], Severity::High),
    (&["severe"], Severity::High),
    (&["serious"], Severity::High),
    (&["major"], Severity::High),
    (&["medium"], Severity::Medium),
    (&["moderate"], Severity::Medium),
    (&["low"], Severity::Low),
];

const PHRASES: &[(&[&str], Concept)] = &[
    (&["three", "d", "secure"], Concept::Action),
    (&["3", "d", "secure"], Concept::Action),
    (&["3d", "secure"], Concept::Action),
    (&["action", "required"], Concept::Action),
    (&["requires", "action"], Concept::Action),
    (&["needs", "action"], Concept::Action),
    (&["past", "due"], Concept::Dunning),
    (&["write", "offs"], Concept::Uncollectible),
    (&["write", "off"], Concept::Uncollectible),
    (&["written", "off"], Concept::Uncollectible),
    (&["bad", "debt"], Concept::Uncollectible),
    (&["payment", "methods"], Concept::Card),
    (&["payment", "method"], Concept::Card),
    (&["credit", "cards"], Concept::Card),
    (&["credit", "card"], Concept::Card),
    (&["debit", "cards"], Concept::Card),
    (&["debit", "card"], Concept::Card),
    (&["charge", "backs"], Concept::Dispute),
    (&["charge", "back"], Concept::Dispute),
    (&["requests", "to", "cancel"], Concept::CancelRequest),
    (&["request", "to", "cancel"], Concept::CancelRequest),
    (&["asks", "to", "cancel"], Concept::CancelRequest),
    (&["wants", "to", "cancel"], Concept::CancelRequest),
    (&["want", "to", "cancel"], Concept::CancelRequest),
    (&["plans", "to", "cancel"], Concept::CancelRequest),
];

fn word_concept(word: &str) -> Option<Concept> {
    use Concept::*;
    let concept = match word {
        "fail" | "fails" | "failed" | "failing" | "failure" | "failures" | "decline"
        | "declines" | "declined" | "declining" | "bounce" | "bounces" | "bounced"
        | "unsuccessful" => Fail,
        "payment" | "payments" | "pay" | "paying" | "charge" | "charges" | "charged"
        | "billing" | "invoice" | "invoices" | "collection" | "collections" => Payment,
        "dunning" | "retry" | "retries" | "retrying" | "overdue" | "delinquent" | "delinquency"
        | "delinquencies" | "unpaid" | "late" | "arrears" | "pastdue" => Dunning,
        "3ds" | "sca" | "authentication" | "authentications" | "authenticate" | "action"
        | "actions" => Action,
        "card" | "cards" => Card,
        "expiring" | "expire" | "expires" | "expiry" | "expiries" | "expiration"
        | "expirations" => Expiring,
        "expired" => Expired,
        "downgrade" | "downgrades" | "downgraded" | "downgrading" | "contraction"
        | "contractions" | "downsell" | "downsells" | "downsize" | "downsized" | "downsizing"
        | "shrink" | "shrinks" | "shrinking" => Downgrade,
        "cancel" | "cancels" | "cancellation" | "cancellations" | "cancelation"
        | "cancelations" | "cancelling" | "canceling" | "churn" | "churns" | "churning"
        | "leaving" => Cancel,
        "canceled" | "cancelled" | "churned" => Canceled,
        "request" | "requests" | "requested" | "pending" | "scheduled" | "intent" | "intents"
        | "asks" | "asked" | "wants" | "planned" => Request,
        "dispute" | "disputes" | "disputed" | "chargeback" | "chargebacks" => Dispute,
        "uncollectible" | "writeoff" | "writeoffs" => Uncollectible,
        "problem" | "problems" | "issue" | "issues" | "trouble" | "troubles" | "risk" | "risks"
        | "risky" | "health" => Trouble,
        "everything" | "anything" | "all" => Everything,
        "subscription" | "subscriptions" | "plan" | "plans" | "seat" | "seats" | "contract"
        | "contracts" => Subscription,
        _ => return None,
    };
    Some(concept)
}

fn is_filler(word: &str) -> bool {
    matches!(
        word,
        "a" | "an"
            | "the"
            | "on"
            | "when"
            | "whenever"
            | "about"
            | "of"
            | "for"
            | "if"
            | "there"
            | "theres"
            | "is"
            | "are"
            | "was"
            | "were"
            | "be"
            | "been"
            | "being"
            | "get"
            | "gets"
            | "got"
            | "has"
            | "have"
            | "had"
            | "any"
            | "new"
            | "me"
            | "my"
            | "i"
            | "we"
            | "our"
            | "us"
            | "you"
            | "your"
            | "their"
            | "they"
            | "them"
            | "it"
            | "its"
            | "with"
            | "in"
            | "to"
            | "from"
            | "by"
            | "at"
            | "happen"
            | "happens"
            | "occur"
            | "occurs"
            | "see"
            | "up"
            | "please"
            | "pls"
            | "thanks"
            | "alerts"
            | "notifications"
            | "notification"
            | "signal"
            | "signals"
            | "event"
            | "events"
            | "customer"
            | "customers"
            | "account"
            | "accounts"
            | "client"
            | "clients"
            | "that"
            | "which"
            | "who"
            | "whose"
            | "do"
            | "does"
            | "some"
            | "one"
            | "ones"
            | "only"
            | "also"
            | "too"
            | "upcoming"
            | "soon"
            | "become"
            | "becomes"
            | "goes"
            | "go"
            | "gone"
            | "into"
            | "required"
            | "requires"
            | "needed"
            | "needs"
            | "can"
            | "could"
            | "would"
            | "will"
            | "should"
            | "so"
            | "just"
            | "ever"
            | "something"
            | "somebody"
            | "someone"
            | "starts"
            | "start"
            | "as"
            | "across"
    )
}

fn tokenize(text: &str) -> Vec<String> {
    let mut normalised = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        match c {
            c if c.is_alphanumeric() => normalised.push(c),
            '\'' | '’' | '‘' => {}
            ',' | '&' | '+' | ';' => normalised.push_str(" and "),
            _ => normalised.push(' '),
        }
    }
    normalised.split_whitespace().map(str::to_owned).collect()
}

fn word_at(tokens: &[Token], index: usize) -> Option<&str> {
    match tokens.get(index) {
        Some(Token::Word(word)) => Some(word),
        _ => None,
    }
}

fn matches_at(tokens: &[Token], index: usize, phrase: &[&str]) -> bool {
    phrase
        .iter()
        .enumerate()
        .all(|(offset, expected)| word_at(tokens, index + offset) == Some(*expected))
}

/// Replaces every occurrence of each phrase (longest listed first) with
/// `replacement(value)`, or removes it when that is none; returns the
/// values found, in order of appearance.
fn extract<T: Copy>(
    tokens: &mut Vec<Token>,
    phrases: &[(&[&str], T)],
    replacement: impl Fn(T) -> Option<Token>,
) -> Vec<T> {
    let mut found = Vec::new();
    let mut index = 0;
    while index < tokens.len() {
        match phrases
            .iter()
            .find(|(phrase, _)| matches_at(tokens, index, phrase))
        {
            Some((phrase, value)) => {
                found.push(*value);
                let replaced: Vec<Token> = replacement(*value).into_iter().collect();
                let step = replaced.len();
                tokens.splice(index..index + phrase.len(), replaced);
                index += step;
            }
            None => index += 1,
        }
    }
    found
}

fn only_one<T: Copy + PartialEq>(
    found: &[T],
    what: &'static str,
    name: impl Fn(T) -> &'static str,
) -> Result<Option<T>, AlertCommandError> {
    let Some(first) = found.first().copied() else {
        return Ok(None);
    };
    match found.iter().copied().find(|other| *other != first) {
        Some(second) => Err(AlertCommandError::Conflicting {
            what,
            first: name(first),
            second: name(second),
        }),
        None => Ok(Some(first)),
    }
}

fn tag<T: Copy>(
    phrases: &'static [&'static [&'static str]],
    value: T,
) -> Vec<(&'static [&'static str], T)> {
    phrases.iter().map(|phrase| (*phrase, value)).collect()
}

/// Parses a chat command such as "alert me on payment failures", "alert me
/// when cards are expiring", "alert me on cancellations for all accounts"
/// or "alert me on critical payment failures". Case, punctuation and
/// plurals do not matter.
pub fn parse_alert_command(text: &str) -> Result<AlertRuleDraft, AlertCommandError> {
    let mut words = tokenize(text);
    while words
        .first()
        .is_some_and(|w| matches!(w.as_str(), "please" | "pls" | "hey"))
    {
        words.remove(0);
    }
    let trigger = TRIGGERS
        .iter()
        .find(|trigger| words.len() >= trigger.len() && words[..trigger.len()] == ***trigger)
        .ok_or(AlertCommandError::NotAnAlertCommand)?;
    let mut tokens: Vec<Token> = words[trigger.len()..]
        .iter()
        .map(|word| Token::Word(word.clone()))
        .collect();

    extract(&mut tokens, &tag(DROPPED, ()), |()| None);
    let mut scopes = extract(&mut tokens, &tag(TENANT, AlertScope::Tenant), |_| None);
    scopes.extend(extract(&mut tokens, &tag(MINE, AlertScope::Mine), |_| None));
    let scope = only_one(&scopes, "accounts", |scope| match scope {
        AlertScope::Mine => "your",
        AlertScope::Tenant => "all",
    })?
    .unwrap_or(AlertScope::Mine);
    let mut digests = extract(&mut tokens, &tag(HOURLY, DigestMode::Hourly), |_| None);
    digests.extend(extract(
        &mut tokens,
        &tag(IMMEDIATE, DigestMode::Immediate),
        |_| None,
    ));
    let digest = only_one(&digests, "delivery", |digest| match digest {
        DigestMode::Immediate => "immediate",
        DigestMode::Hourly => "hourly",
    })?
    .unwrap_or(DigestMode::Immediate);
    let severities = extract(&mut tokens, SEVERITIES, |_| None);
    let min_severity =
        only_one(&severities, "severity", Severity::as_str)?.unwrap_or(Severity::Low);
    extract(&mut tokens, PHRASES, |concept| {
        Some(Token::Concept(concept))
    });
    for token in &mut tokens {
        if matches!(token, Token::Word(word) if matches!(word.as_str(), "and" | "or" | "plus")) {
            *token = Token::And;
        }
    }

    let mut unknown = Vec::new();
    let mut segments: Vec<BTreeSet<Concept>> = Vec::new();
    let mut current = BTreeSet::new();
    for token in tokens {
        let concept = match token {
            Token::And => {
                segments.push(std::mem::take(&mut current));
                continue;
            }
            Token::Concept(concept) => concept,
            Token::Word(word) => match word_concept(&word) {
                Some(concept) => concept,
                None if is_filler(&word) => continue,
                None => {
                    unknown.push(word);
                    continue;
                }
            },
        };
        current.insert(concept);
    }
    segments.push(current);
    if !unknown.is_empty() {
        return Err(AlertCommandError::Unrecognised { words: unknown });
    }

    let mut kinds = BTreeSet::new();
    let mut everything = false;
    for segment in &segments {
        let segment_kinds = segment_kinds(segment);
        if segment_kinds.is_none() {
            everything |=
                segment.contains(&Concept::Everything) || segment.contains(&Concept::Trouble);
        }
        kinds.extend(segment_kinds.unwrap_or_default());
    }
    if everything {
        kinds.clear();
    } else if kinds.is_empty() {
        return Err(AlertCommandError::NothingToAlertOn);
    }
    Ok(AlertRuleDraft {
        kinds: kinds.into_iter().collect(),
        min_severity,
        scope,
        digest,
    })
}

/// The kinds one subject names; none when it names no specific kind.
fn segment_kinds(segment: &BTreeSet<Concept>) -> Option<Vec<SignalKind>> {
    let has = |concept| segment.contains(&concept);
    let mut kinds = Vec::new();
    if has(Concept::Fail) {
        kinds.push(SignalKind::PaymentFailed);
    }
    if has(Concept::Dunning) {
        kinds.push(SignalKind::DunningInProgress);
    }
    if has(Concept::Action) {
        kinds.push(SignalKind::PaymentActionRequired);
    }
    if has(Concept::Expiring) {
        kinds.push(SignalKind::CardExpiring);
    }
    if has(Concept::Expired) {
        kinds.push(SignalKind::CardExpired);
    }
    if has(Concept::Downgrade) {
        kinds.push(SignalKind::SubscriptionDowngrade);
    }
    let any_cancel = has(Concept::Cancel) || has(Concept::Canceled);
    if has(Concept::CancelRequest) || (any_cancel && has(Concept::Request)) {
        kinds.push(SignalKind::CancellationRequested);
    } else if has(Concept::Cancel) {
        kinds.push(SignalKind::CancellationRequested);
        kinds.push(SignalKind::SubscriptionCanceled);
    } else if has(Concept::Canceled) {
        kinds.push(SignalKind::SubscriptionCanceled);
    }
    if has(Concept::Dispute) {
        kinds.push(SignalKind::DisputeOpened);
    }
    if has(Concept::Uncollectible) {
        kinds.push(SignalKind::InvoiceUncollectible);
    }
    if kinds.is_empty() && has(Concept::Card) {
        kinds.extend([SignalKind::CardExpiring, SignalKind::CardExpired]);
    }
    if kinds.is_empty() && has(Concept::Payment) {
        kinds.extend(SignalKind::ALL.into_iter().filter(|k| k.is_payment()));
    }
    (!kinds.is_empty()).then_some(kinds)
}

#[cfg(test)]
mod tests;
