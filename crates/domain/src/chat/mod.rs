//! The PRD's chat commands, parsed without any model: "What's the billing status for
//! [account]?", "Any failed payments for [account]?", "Show MRR for [account]" and "Alert me
//! on payment failures", with their everyday paraphrases.
//!
//! [`parse_chat`] turns a text into a [`ChatCommand`]: an alert rule (delegated to
//! [`parse_alert_command`]) or a [`Question`] about an account. The account is only a name
//! the user typed, so a question comes with several [`Reading`]s — ways to split the text
//! into question and account ("MRR for Bank of America" is about "Bank of America", "status
//! of billing for Acme" about "Acme") — and [`resolve_account`] picks the first reading whose
//! name is a known account of the tenant, or reports a choice or an unknown name.

mod account;
mod question;

pub use account::{resolve_account, AccountResolution, KnownAccount};
pub use question::{parse_chat, Question, Reading};

use crate::risk::{AlertCommandError, AlertRuleDraft};

/// Longest chat text accepted, in characters.
pub const MAX_CHAT_CHARS: usize = 500;

/// What the chat understands, for replies to texts it does not.
pub const CHAT_HELP: &str = "Ask me \"What's the billing status for <account>?\", \
\"Any failed payments for <account>?\", \"Show MRR for <account>\" or \"Alert me on payment \
failures\".";

/// A parsed chat text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatCommand {
    /// A question about one account; readings in order of preference, never empty.
    Ask {
        /// The ways to read the text, best first.
        readings: Vec<Reading>,
    },
    /// "Alert me on …": a rule for the CSM who typed it.
    Alert(AlertRuleDraft),
}

/// Why a chat text is not a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    /// Empty or only punctuation.
    #[error("Say something. {CHAT_HELP}")]
    Empty,
    /// Over [`MAX_CHAT_CHARS`].
    #[error("That is too long: at most {MAX_CHAT_CHARS} characters. {CHAT_HELP}")]
    TooLong,
    /// Neither a question nor an alert command.
    #[error("I did not understand that. {CHAT_HELP}")]
    NotUnderstood,
    /// A question without an account.
    #[error("Which account? Say e.g. \"{} for Acme Corp\".", .0.example())]
    NoAccount(Question),
    /// An alert command that does not parse.
    #[error(transparent)]
    Alert(AlertCommandError),
}

#[cfg(test)]
mod tests;
