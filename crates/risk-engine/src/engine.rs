//! From one fact to its effects, inside the caller's transaction: keep the newest state of
//! the object, ask the pure rules of [`domain::risk`] what changes, apply the changes to the
//! signals, then settle — alerts for raises, health for the accounts touched, and the events
//! for all of it. Returns the events to queue in the outbox.
//!
//! Facts older than the state held are dropped before any rule runs: the rules must only see
//! an object's newest state (a stale "unpaid" after a "paid" would re-open the signal).

use chrono::{DateTime, NaiveDate, TimeZone as _, Utc};
use contracts::v1;
use diesel_async::AsyncPgConnection;
use domain::risk::{
    card_replaced, card_signals, dispute_signals, invoice_signals, parse_movement,
    subscription_signals, CardState, DisputeId, DisputeState, DisputeStatus, HealthWeights,
    InvoiceState, InvoiceStatus, RiskConfig, SignalChange, SubscriptionChange,
};
use domain::{
    Currency, StripeCustomerId, StripeInvoiceId, StripePaymentMethodId, StripeSubscriptionId,
};
use platform::amqp::Outgoing;

use crate::signals::{self, Origin, Outcome};
use crate::{alerts, events, health, state};

type Result<T> = std::result::Result<T, EngineError>;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
    /// The fact cannot be understood (bad id, currency, status): redelivery will not help.
    #[error("{0}")]
    Invalid(String),
}

fn invalid(what: impl std::fmt::Display) -> EngineError {
    EngineError::Invalid(what.to_string())
}

fn time(secs: i64) -> Option<DateTime<Utc>> {
    (secs > 0)
        .then(|| Utc.timestamp_opt(secs, 0).single())
        .flatten()
}

fn nonempty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

pub struct Engine {
    pub config: RiskConfig,
    pub weights: HealthWeights,
}

/// Where a fact comes from.
pub struct FactOrigin {
    pub tenant: String,
    pub customer: String,
    pub stripe_account: String,
    pub occurred_at: i64,
    pub source: String,
    pub now: DateTime<Utc>,
}

impl FactOrigin {
    pub fn from_context(context: &v1::FactContext, customer: &str, now: DateTime<Utc>) -> Self {
        Self {
            tenant: context.tenant_id.clone(),
            customer: customer.to_owned(),
            stripe_account: context.account_id.clone(),
            occurred_at: context.occurred_at,
            source: context.source.clone(),
            now,
        }
    }

    fn origin(&self) -> Origin<'_> {
        Origin {
            tenant: &self.tenant,
            stripe_customer_id: &self.customer,
            stripe_account_id: &self.stripe_account,
            occurred_at: time(self.occurred_at).unwrap_or(self.now),
            source: &self.source,
            now: self.now,
        }
    }
}

impl Engine {
    /// `invoice.updated`.
    pub async fn invoice(
        &self,
        conn: &mut AsyncPgConnection,
        at: &FactOrigin,
        fact: &v1::InvoiceUpdated,
    ) -> Result<Vec<Outgoing>> {
        let failed_now =
            fact.attempt_count > 0 && fact.status == "open" && fact.amount_remaining > 0;
        let row = state::Invoice {
            stripe_invoice_id: fact.stripe_invoice_id.clone(),
            stripe_customer_id: fact.stripe_customer_id.clone(),
            stripe_subscription_id: nonempty(&fact.stripe_subscription_id).map(str::to_owned),
            status: fact.status.clone(),
            amount_due: fact.amount_due,
            amount_remaining: fact.amount_remaining,
            currency: fact.currency.clone(),
            attempt_count: i32::try_from(fact.attempt_count).unwrap_or(i32::MAX),
            next_payment_attempt: time(fact.next_payment_attempt),
            due_date: time(fact.due_date),
            paid_at: time(fact.paid_at),
            billing_reason: nonempty(&fact.billing_reason).map(str::to_owned),
            first_failed_at: failed_now.then(|| time(at.occurred_at).unwrap_or(at.now)),
        };
        // Validate before storing: a fact the rules cannot read is refused whole.
        self.invoice_state(&row, None)?;
        let Some(stored) = state::upsert_invoice(conn, &at.tenant, &row, at.occurred_at).await?
        else {
            return Ok(Vec::new());
        };
        let failure = state::last_failure(conn, &at.tenant, &at.customer).await?;
        let invoice = self.invoice_state(&stored, failure.as_ref())?;
        let changes = invoice_signals(&invoice, at.now, &self.config);
        self.apply(conn, at, &changes).await
    }

    fn invoice_state(
        &self,
        row: &state::Invoice,
        failure: Option<&state::Failure>,
    ) -> Result<InvoiceState> {
        let status: InvoiceStatus = row.status.parse().map_err(invalid)?;
        // A failure code belongs to this invoice only if it came after its first failure.
        let failure = failure.filter(|f| {
            row.attempt_count > 0
                && row
                    .first_failed_at
                    .is_none_or(|first| f.attempted_at >= first - chrono::TimeDelta::hours(1))
        });
        let code = failure.and_then(|f| f.failure_code.clone());
        Ok(InvoiceState {
            invoice_id: StripeInvoiceId::parse(&row.stripe_invoice_id).map_err(invalid)?,
            customer_id: StripeCustomerId::parse(&row.stripe_customer_id).map_err(invalid)?,
            subscription_id: row
                .stripe_subscription_id
                .as_deref()
                .map(StripeSubscriptionId::parse)
                .transpose()
                .map_err(invalid)?,
            status,
            amount_due: row.amount_due,
            amount_remaining: row.amount_remaining,
            currency: Currency::parse(&row.currency).map_err(invalid)?,
            attempt_count: u32::try_from(row.attempt_count.max(0)).unwrap_or(0),
            next_payment_attempt: row.next_payment_attempt,
            due_date: row.due_date,
            paid_at: row.paid_at,
            first_failed_at: row.first_failed_at,
            requires_action: code.as_deref() == Some("authentication_required"),
            last_failure_code: code,
            last_failure_message: failure.and_then(|f| f.failure_message.clone()),
            billing_reason: row.billing_reason.clone(),
        })
    }

    /// `payment.failed`: remembered, and the customer's open invoices re-read so their signals
    /// carry the failure code (or ask for authentication).
    pub async fn payment_failed(
        &self,
        conn: &mut AsyncPgConnection,
        at: &FactOrigin,
        fact: &v1::PaymentAttempted,
    ) -> Result<Vec<Outgoing>> {
        let attempted_at = time(fact.attempted_at).unwrap_or(at.now);
        let newer = state::record_failure(
            conn,
            &at.tenant,
            &at.customer,
            &fact.charge_id,
            nonempty(&fact.failure_code),
            nonempty(&fact.failure_message),
            fact.amount,
            &fact.currency,
            attempted_at,
        )
        .await?;
        if !newer {
            return Ok(Vec::new());
        }
        self.reevaluate_invoices(conn, at).await
    }

    async fn reevaluate_invoices(
        &self,
        conn: &mut AsyncPgConnection,
        at: &FactOrigin,
    ) -> Result<Vec<Outgoing>> {
        let failure = state::last_failure(conn, &at.tenant, &at.customer).await?;
        let mut changes = Vec::new();
        for row in state::open_invoices(conn, &at.tenant, Some(&at.customer)).await? {
            match self.invoice_state(&row, failure.as_ref()) {
                Ok(invoice) => changes.extend(invoice_signals(&invoice, at.now, &self.config)),
                Err(e) => {
                    tracing::warn!(invoice = %row.stripe_invoice_id, error = %e, "stored invoice unreadable")
                }
            }
        }
        self.apply(conn, at, &changes).await
    }

    /// `subscription.changed`.
    pub async fn subscription(
        &self,
        conn: &mut AsyncPgConnection,
        at: &FactOrigin,
        fact: &v1::SubscriptionChanged,
    ) -> Result<Vec<Outgoing>> {
        let change = SubscriptionChange {
            subscription_id: StripeSubscriptionId::parse(&fact.stripe_subscription_id)
                .map_err(invalid)?,
            customer_id: StripeCustomerId::parse(&fact.stripe_customer_id).map_err(invalid)?,
            status_before: nonempty(&fact.status_before)
                .map(str::parse)
                .transpose()
                .map_err(invalid)?,
            status_after: fact.status_after.parse().map_err(invalid)?,
            plan_before: nonempty(&fact.plan_before).map(str::to_owned),
            plan_after: nonempty(&fact.plan_after).map(str::to_owned),
            quantity_before: u64::try_from(fact.quantity_before)
                .ok()
                .filter(|_| !fact.status_before.is_empty()),
            quantity_after: u64::try_from(fact.quantity_after).ok(),
            mrr_before: fact.mrr_before,
            mrr_after: fact.mrr_after,
            currency: Currency::parse(&fact.currency).map_err(invalid)?,
            movement: parse_movement(&fact.movement).map_err(invalid)?,
            cancel_at_period_end: fact.cancel_at_period_end,
            current_period_end: time(fact.current_period_end),
            canceled_at: time(fact.canceled_at),
            occurred_at: time(at.occurred_at).unwrap_or(at.now),
        };
        let newer = state::upsert_subscription(
            conn,
            &at.tenant,
            &fact.stripe_subscription_id,
            &fact.stripe_customer_id,
            &fact.status_after,
            fact.mrr_after,
            &fact.currency,
            fact.cancel_at_period_end,
            at.occurred_at,
        )
        .await?;
        if !newer {
            return Ok(Vec::new());
        }
        let changes = subscription_signals(&change, &self.config);
        self.apply(conn, at, &changes).await
    }

    /// `dispute.changed`: raises `dispute_opened` while the dispute is open (escalating an
    /// inquiry that became a chargeback), resolves it with the outcome once closed.
    pub async fn dispute(
        &self,
        conn: &mut AsyncPgConnection,
        at: &FactOrigin,
        fact: &v1::DisputeChanged,
    ) -> Result<Vec<Outgoing>> {
        let dispute = dispute_state(fact)?;
        let row = state::Dispute {
            dispute_id: fact.dispute_id.clone(),
            stripe_customer_id: fact.stripe_customer_id.clone(),
            charge_id: fact.charge_id.clone(),
            amount: fact.amount,
            currency: fact.currency.clone(),
            reason: fact.reason.clone(),
            status: fact.status.clone(),
            evidence_due_by: dispute.evidence_due_by,
        };
        if !state::upsert_dispute(conn, &at.tenant, &row, at.occurred_at).await? {
            return Ok(Vec::new());
        }
        let changes = dispute_signals(&dispute);
        self.apply(conn, at, &changes).await
    }

    /// `customer.upserted`: the default card may have changed.
    pub async fn customer(
        &self,
        conn: &mut AsyncPgConnection,
        at: &FactOrigin,
        fact: &v1::CustomerUpserted,
    ) -> Result<Vec<Outgoing>> {
        let newer = state::upsert_customer(
            conn,
            &at.tenant,
            &at.customer,
            &at.stripe_account,
            nonempty(&fact.default_payment_method),
            fact.delinquent,
            fact.deleted,
            at.occurred_at,
        )
        .await?;
        if !newer {
            return Ok(Vec::new());
        }
        self.cards(conn, at, at.now.date_naive()).await
    }

    /// `payment_method.updated` (attached, updated, detached).
    pub async fn payment_method(
        &self,
        conn: &mut AsyncPgConnection,
        at: &FactOrigin,
        fact: &v1::PaymentMethodUpdated,
    ) -> Result<Vec<Outgoing>> {
        StripePaymentMethodId::parse(&fact.payment_method_id).map_err(invalid)?;
        let card = state::Card {
            payment_method_id: fact.payment_method_id.clone(),
            stripe_customer_id: at.customer.clone(),
            brand: fact.brand.clone(),
            last4: fact
                .last4
                .chars()
                .filter(char::is_ascii_digit)
                .take(4)
                .collect(),
            exp_month: i16::try_from(fact.exp_month).unwrap_or(0),
            exp_year: i16::try_from(fact.exp_year).unwrap_or(0),
            detached: fact.detached,
        };
        if !state::upsert_card(conn, &at.tenant, &card, at.occurred_at).await? {
            return Ok(Vec::new());
        }
        self.cards(conn, at, at.now.date_naive()).await
    }

    /// Card signals of the customer's current default card on `today`, and resolution of
    /// those about any other card.
    pub async fn cards(
        &self,
        conn: &mut AsyncPgConnection,
        at: &FactOrigin,
        today: NaiveDate,
    ) -> Result<Vec<Outgoing>> {
        let customer = state::customer(conn, &at.tenant, &at.customer).await?;
        let default = match customer
            .as_ref()
            .and_then(|c| c.default_payment_method.clone())
        {
            Some(pm) if !customer.as_ref().is_some_and(|c| c.deleted) => {
                state::card(conn, &at.tenant, &pm).await?
            }
            _ => None,
        };
        let current = match default {
            Some(card) => Some(CardState {
                payment_method_id: StripePaymentMethodId::parse(&card.payment_method_id)
                    .map_err(invalid)?,
                customer_id: StripeCustomerId::parse(&card.stripe_customer_id).map_err(invalid)?,
                brand: card.brand,
                last4: card.last4,
                exp_month: u32::try_from(card.exp_month).unwrap_or(0),
                exp_year: i32::from(card.exp_year),
                is_default: true,
                detached: card.detached,
            }),
            None => None,
        };
        let mut changes: Vec<SignalChange> = Vec::new();
        if let Some(card) = &current {
            match card_signals(card, today, &self.config) {
                Ok(c) => changes.extend(c),
                Err(e) => tracing::warn!(error = %e, "card expiry unreadable; no card signal"),
            }
        }
        let held: Vec<_> = signals::of_customer(conn, &at.tenant, &at.customer, false)
            .await?
            .iter()
            .filter_map(signals::Signal::record)
            .collect();
        changes.extend(card_replaced(&held, current.as_ref()));
        self.apply(conn, at, &changes).await
    }

    /// The daily look at one customer: its default card on `today`, its open invoices (the
    /// delinquency age grows) and its one-off signals past their window.
    pub async fn scan_customer(
        &self,
        conn: &mut AsyncPgConnection,
        at: &FactOrigin,
        today: NaiveDate,
    ) -> Result<Vec<Outgoing>> {
        let mut out = self.cards(conn, at, today).await?;
        out.extend(self.reevaluate_invoices(conn, at).await?);
        let held: Vec<_> = signals::of_customer(conn, &at.tenant, &at.customer, false)
            .await?
            .iter()
            .filter_map(signals::Signal::record)
            .collect();
        let aged = domain::risk::age_out_signals(&held, at.now, &self.config);
        out.extend(self.apply(conn, at, &aged).await?);
        Ok(out)
    }

    /// Applies changes for the fact's customer and settles their effects.
    pub async fn apply(
        &self,
        conn: &mut AsyncPgConnection,
        at: &FactOrigin,
        changes: &[SignalChange],
    ) -> Result<Vec<Outgoing>> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let link = state::link(conn, &at.tenant, &at.customer).await?;
        let account = link.as_ref().and_then(|l| l.account_id.as_deref());
        let origin = at.origin();
        let outcome = signals::apply(conn, &origin, account, changes).await?;
        self.settle(conn, &origin, outcome, link.as_ref()).await
    }

    /// Alerts, health and events for what `outcome` changed.
    pub async fn settle(
        &self,
        conn: &mut AsyncPgConnection,
        origin: &Origin<'_>,
        outcome: Outcome,
        link: Option<&state::Link>,
    ) -> Result<Vec<Outgoing>> {
        let tenant = origin.tenant;
        let csm = link.and_then(|l| l.csm_user_id.as_deref());
        let mut out = Vec::new();
        let raises = !outcome.opened.is_empty() || !outcome.escalated.is_empty();
        let rules = if raises && origin.alerts() {
            alerts::rules(conn, tenant).await?
        } else {
            Vec::new()
        };
        for (signal, escalated) in outcome
            .opened
            .iter()
            .map(|s| (s, false))
            .chain(outcome.escalated.iter().map(|s| (s, true)))
        {
            out.push(events::raised(tenant, signal, csm, escalated));
            if origin.alerts() {
                for alert in
                    alerts::for_signal(conn, tenant, &rules, signal, csm, origin.now).await?
                {
                    out.push(events::alert(tenant, &alert, signal));
                }
            }
        }
        for signal in &outcome.resolved {
            out.push(events::resolved(tenant, signal));
        }
        for account in &outcome.accounts {
            if let Some(change) =
                health::recompute(conn, tenant, account, origin.now, &self.weights).await?
            {
                out.push(events::health(tenant, &change, csm));
            }
        }
        Ok(out)
    }

    /// `link.changed`: the customer's signals follow it to its new account; both accounts'
    /// health is recomputed; the new CSM hears of the open signals.
    pub async fn link(
        &self,
        conn: &mut AsyncPgConnection,
        fact: &v1::CustomerLinkChanged,
        now: DateTime<Utc>,
    ) -> Result<Vec<Outgoing>> {
        let tenant = fact.tenant_id.as_str();
        let customer = fact.stripe_customer_id.as_str();
        let before = state::link(conn, tenant, customer).await?;
        let link = state::Link {
            account_id: nonempty(&fact.account_id_after).map(str::to_owned),
            csm_user_id: nonempty(&fact.csm_user_id).map(str::to_owned),
            version: fact.version,
        };
        if !state::upsert_link(conn, tenant, customer, &fact.stripe_account_id, &link).await? {
            return Ok(Vec::new());
        }
        let old_account = before.as_ref().and_then(|l| l.account_id.clone());
        let mut out = Vec::new();
        if old_account != link.account_id {
            signals::move_customer(
                conn,
                tenant,
                customer,
                link.account_id.as_deref(),
                health::cutoff(now, &self.weights),
            )
            .await?;
            let mut accounts: Vec<&String> =
                old_account.iter().chain(link.account_id.iter()).collect();
            accounts.sort();
            for account in accounts {
                if let Some(change) =
                    health::recompute(conn, tenant, account, now, &self.weights).await?
                {
                    let csm = if Some(account) == link.account_id.as_ref() {
                        link.csm_user_id.as_deref()
                    } else {
                        before.as_ref().and_then(|l| l.csm_user_id.as_deref())
                    };
                    out.push(events::health(tenant, &change, csm));
                }
            }
        }
        let csm_changed = before.as_ref().map(|l| &l.csm_user_id) != Some(&link.csm_user_id);
        if old_account != link.account_id || csm_changed {
            let rules = alerts::rules(conn, tenant).await?;
            for signal in signals::of_customer(conn, tenant, customer, false).await? {
                for alert in alerts::for_signal(
                    conn,
                    tenant,
                    &rules,
                    &signal,
                    link.csm_user_id.as_deref(),
                    now,
                )
                .await?
                {
                    out.push(events::alert(tenant, &alert, &signal));
                }
            }
        }
        Ok(out)
    }
}

/// Reads a `DisputeChanged` as the rules' [`DisputeState`], refusing what they cannot use.
pub fn dispute_state(fact: &v1::DisputeChanged) -> Result<DisputeState> {
    let dispute_id = DisputeId::parse(&fact.dispute_id).map_err(invalid)?;
    let what = |field: &str| invalid(format!("dispute {dispute_id}: {field}"));
    if fact.charge_id.trim().is_empty() {
        return Err(what("no charge"));
    }
    if fact.reason.trim().is_empty() {
        return Err(what("no reason"));
    }
    if fact.amount < 0 {
        return Err(what(&format!("negative amount {}", fact.amount)));
    }
    let status: DisputeStatus = fact.status.parse().map_err(|e| what(&format!("{e}")))?;
    Ok(DisputeState {
        customer_id: StripeCustomerId::parse(&fact.stripe_customer_id).map_err(invalid)?,
        charge_id: fact.charge_id.clone(),
        amount: fact.amount,
        currency: Currency::parse(&fact.currency).map_err(|e| what(&format!("{e}")))?,
        reason: fact.reason.clone(),
        status,
        evidence_due_by: time(fact.evidence_due_by),
        dispute_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::risk::{ResolveReason, Severity, SignalKind};

    fn fact(status: &str) -> v1::DisputeChanged {
        v1::DisputeChanged {
            context: None,
            stripe_customer_id: "cus_1".into(),
            dispute_id: "dp_1".into(),
            charge_id: "ch_1".into(),
            payment_intent_id: "pi_1".into(),
            amount: 4_900,
            currency: "usd".into(),
            reason: "fraudulent".into(),
            status: status.into(),
            evidence_due_by: 1_700_604_800,
            created: 1_700_000_000,
        }
    }

    #[test]
    fn a_dispute_fact_reads_as_the_rules_state() {
        let state = dispute_state(&fact("needs_response")).unwrap();
        assert_eq!(state.dispute_id.as_str(), "dp_1");
        assert_eq!(state.customer_id.as_str(), "cus_1");
        assert_eq!(state.status, DisputeStatus::NeedsResponse);
        assert_eq!(state.currency, Currency::parse("usd").unwrap());
        assert_eq!(state.evidence_due_by, time(1_700_604_800));
        let no_deadline = dispute_state(&v1::DisputeChanged {
            evidence_due_by: 0,
            ..fact("under_review")
        })
        .unwrap();
        assert_eq!(no_deadline.evidence_due_by, None);
        let opened = dispute_signals(&state);
        let draft = opened[0].as_raise().unwrap();
        assert_eq!(
            (draft.kind, draft.severity),
            (SignalKind::DisputeOpened, Severity::Critical)
        );
        let lost = dispute_signals(&dispute_state(&fact("lost")).unwrap());
        assert!(matches!(
            &lost[..],
            [SignalChange::Resolve {
                reason: ResolveReason::DisputeLost,
                ..
            }]
        ));
    }

    #[test]
    fn unreadable_dispute_facts_are_refused_by_name() {
        let refused = |f: v1::DisputeChanged| dispute_state(&f).unwrap_err().to_string();
        assert!(refused(v1::DisputeChanged {
            dispute_id: "ch_1".into(),
            ..fact("won")
        })
        .contains("DisputeId"));
        assert_eq!(
            refused(fact("open")),
            "dispute dp_1: unknown dispute status \"open\""
        );
        assert_eq!(
            refused(v1::DisputeChanged {
                charge_id: String::new(),
                ..fact("won")
            }),
            "dispute dp_1: no charge"
        );
        assert_eq!(
            refused(v1::DisputeChanged {
                reason: " ".into(),
                ..fact("won")
            }),
            "dispute dp_1: no reason"
        );
        assert_eq!(
            refused(v1::DisputeChanged {
                amount: -5,
                ..fact("won")
            }),
            "dispute dp_1: negative amount -5"
        );
        assert!(refused(v1::DisputeChanged {
            stripe_customer_id: "acct_1".into(),
            ..fact("won")
        })
        .contains("StripeCustomerId"));
        assert!(refused(v1::DisputeChanged {
            currency: "dollars".into(),
            ..fact("won")
        })
        .starts_with("dispute dp_1: "));
    }
}
