//! Risk signals, billing health and CSM alerts: pure rules, no IO, no clock.
//!
//! The risk engine keeps per-customer state from the `billing` facts, calls
//! these functions and stores what they decide. Each rule takes the current
//! state of one Stripe object and returns [`SignalChange`]s:
//!
//! - [`invoice_signals`]: payment failed, dunning (retries), payment action
//!   required, invoice uncollectible.
//! - [`subscription_signals`]: dunning (`past_due` / `unpaid`), downgrade,
//!   cancellation requested, subscription canceled.
//! - [`card_signals`] and [`card_replaced`]: card expiring, card expired.
//! - [`dispute_signals`]: dispute opened.
//! - [`age_out_signals`]: closes one-off signals (downgrade, canceled) after
//!   [`RiskConfig::one_off_open_days`].
//!
//! Then [`health_score`] scores an account from its signals,
//! [`revenue_at_risk`] sums the MRR of accounts with open payment signals,
//! [`rule_matches`] decides who is alerted, [`parse_alert_command`] turns
//! "alert me on payment failures" into a rule, and [`digest_window`] groups
//! hourly digests. The model and its defaults are explained in
//! `docs/risk-model.md`.
//!
//! # The contract with the service
//!
//! A signal is identified by `(tenant, kind, cause_key)`; at most one is
//! open per identity.
//!
//! - [`SignalChange::Raise`]: if a signal with this identity is open, update
//!   its severity, evidence, objects and summary (and keep its `raised_at`);
//!   otherwise open a new one. A raise after a resolve is a **new** signal
//!   (new id, new `raised_at`, new alerts).
//! - [`SignalChange::Resolve`]: if one is open, close it with the reason
//!   and the time; otherwise do nothing.
//! - Rules are functions of the object's current state (and `now` / `today`
//!   where time matters, passed in): the same input always gives the same
//!   changes, so a replayed fact changes nothing. No output names the same
//!   `(kind, cause_key)` twice. Because a raise after a resolve re-opens,
//!   the service must call the rules only with the newest state of an object
//!   (the sync worker emits facts in that order per object, and the inbox
//!   drops duplicated messages); feeding an old state after a newer one
//!   would re-open what the newer one resolved.
//! - A signal raised from a backfill fact is current state like any other,
//!   but the service should not alert on it when the object's change is old
//!   (the fact's `source` is `backfill`).
//! - After applying the changes of one fact, recompute the account's
//!   [`health_score`] from its open signals and those resolved within
//!   [`HealthWeights::resolved_cutoff_days`]; store and publish it when the
//!   score or band changed.
//! - For each raise (new or update), alert every CSM with a matching rule
//!   ([`rule_matches`]) who has no alert for that signal yet: at most one
//!   alert per signal and CSM.
//! - Daily: [`card_signals`] for every default card, [`invoice_signals`] for
//!   every open invoice (the delinquency age grows), [`age_out_signals`] for
//!   the open signals.

mod alert_command;
mod alert_rule;
mod card;
mod cause_key;
mod change;
mod config;
mod digest;
mod dispute;
mod health;
mod invoice;
mod kind;
mod overlap;
mod record;
mod revenue;
mod subscription;

#[cfg(test)]
mod property_tests;
#[cfg(test)]
mod scenario_tests;
#[cfg(test)]
mod test_support;

pub use alert_command::{
    parse_alert_command, AlertCommandError, AlertRuleDraft, ALERT_COMMAND_HELP,
};
pub use alert_rule::{rule_matches, AlertRule, AlertScope, DigestMode};
pub use card::{card_replaced, card_signals, CardError, CardState};
pub use cause_key::CauseKey;
pub use change::{
    CardEvidence, DisputeEvidence, DunningStage, Evidence, InvoiceEvidence, ResolveReason,
    SignalChange, SignalDraft, SubscriptionEvidence, UnknownDunningStage, UnknownResolveReason,
};
pub use config::{
    HealthBands, HealthWeights, KindWeights, RiskConfig, RiskConfigError, SeverityMultipliers,
};
pub use digest::{digest_window, DigestWindow};
pub use dispute::{dispute_signals, DisputeId, DisputeState, DisputeStatus, UnknownDisputeStatus};
pub use health::{health_score, HealthBand, HealthComponent, HealthScore};
pub use invoice::{invoice_signals, InvoiceState, InvoiceStatus, UnknownInvoiceStatus};
pub use kind::{Severity, SignalKind, UnknownSeverity, UnknownSignalKind};
pub use overlap::{without_overlaps, OVERLAPPING_KINDS};
pub use record::{age_out_signals, SignalRecord};
pub use revenue::{revenue_at_risk, AccountAtRisk, AccountRisk, CsmRevenueAtRisk, RevenueAtRisk};
pub use subscription::{parse_movement, subscription_signals, SubscriptionChange, UnknownMovement};
