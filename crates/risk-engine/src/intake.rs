//! The risk engine's consumers. Each message is applied in one transaction — its inbox record,
//! the state it carries, the signals, alerts and health it changes, and the events for CSCX
//! in the outbox — under a per-customer lock, then the relay is woken.
//!
//! - `billing` (every fact of the sync worker),
//! - `matching` `link.changed` (signals and health follow the customer's account),
//! - `risk` `rule.requested` (CSM alert rules from query-api).
//!
//! A message without a valid tenant, or that cannot be understood, is dead-lettered with
//! the reason.

use std::sync::Arc;

use contracts::{v1, Contract as _};
use diesel_async::{AsyncConnection as _, AsyncPgConnection};
use domain::risk::{AlertRule, Severity, SignalKind};
use futures_util::future::BoxFuture;
use futures_util::FutureExt as _;
use platform::amqp::{HandleError, Handler, Incoming, Outgoing};
use platform::db::PgPool;
use tokio::sync::Notify;

use crate::alerts;
use crate::engine::{Engine, EngineError, FactOrigin};
use crate::events;

const SCHEMA: &str = "risk";

/// Why a message was not applied, sorted into retry or dead-letter.
#[derive(Debug, thiserror::Error)]
enum ApplyError {
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
    #[error("{0}")]
    Invalid(String),
}

impl From<EngineError> for ApplyError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Db(e) => Self::Db(e),
            EngineError::Invalid(s) => Self::Invalid(s),
        }
    }
}

/// Runs `apply` once per message id in a transaction; queues what it returns in the outbox.
async fn once<F>(
    pool: &PgPool,
    consumer: &'static str,
    message: &Incoming,
    relay: &Notify,
    apply: F,
) -> Result<(), HandleError>
where
    F: for<'c> FnOnce(
            &'c mut AsyncPgConnection,
        ) -> BoxFuture<'c, Result<Vec<Outgoing>, ApplyError>>
        + Send
        + 'static,
{
    let mut conn = pool.get().await.map_err(HandleError::transient)?;
    let id = message.message_id.clone();
    let queued = conn
        .transaction::<_, ApplyError, _>(async move |conn| {
            if !platform::inbox::first_delivery(conn, SCHEMA, consumer, &id).await? {
                return Ok(0);
            }
            let out = apply(conn).await?;
            events::outbox().enqueue(conn, &out).await?;
            Ok(out.len())
        })
        .await
        .map_err(|e| match e {
            ApplyError::Db(e) => HandleError::transient(e),
            ApplyError::Invalid(reason) => HandleError::permanent(anyhow::anyhow!(reason)),
        })?;
    if queued > 0 {
        relay.notify_one();
    }
    Ok(())
}

/// `billing`: every fact.
pub struct Facts {
    pub pool: PgPool,
    pub engine: Arc<Engine>,
    pub relay: Arc<Notify>,
}

impl Facts {
    fn origin(
        message: &Incoming,
        tenant: &str,
        context: Option<&v1::FactContext>,
        customer: &str,
    ) -> Result<FactOrigin, HandleError> {
        let context = context.cloned().unwrap_or_default();
        if !context.tenant_id.is_empty() && context.tenant_id != tenant {
            return Err(HandleError::permanent(anyhow::anyhow!(
                "fact {} for tenant {} arrived with header tenant {tenant}",
                message.message_id,
                context.tenant_id
            )));
        }
        if customer.is_empty() {
            return Err(HandleError::permanent(anyhow::anyhow!(
                "fact {} names no Stripe customer",
                message.message_id
            )));
        }
        let mut origin = FactOrigin::from_context(&context, customer, chrono::Utc::now());
        origin.tenant = tenant.to_owned();
        Ok(origin)
    }
}

impl Handler for Facts {
    async fn handle(&self, message: &Incoming) -> Result<(), HandleError> {
        let tenant = message.tenant()?;
        let tenant = tenant.as_str();
        let engine = self.engine.clone();
        macro_rules! run {
            ($decoded:expr, $consumer:literal, |$engine:ident, $conn:ident, $at:ident, $fact:ident| $body:expr) => {{
                let $fact = $decoded;
                let $at = Self::origin(
                    message,
                    tenant,
                    $fact.context.as_ref(),
                    &$fact.stripe_customer_id,
                )?;
                once(&self.pool, $consumer, message, &self.relay, move |$conn| {
                    async move {
                        let $engine = &engine;
                        crate::state::lock_customer($conn, &$at.tenant, &$at.customer).await?;
                        Ok($body.await?)
                    }
                    .boxed()
                })
                .await
            }};
        }
        match message.message_type.as_str() {
            v1::InvoiceUpdated::TYPE => {
                run!(
                    message.decode::<v1::InvoiceUpdated>()?,
                    "invoices",
                    |e, conn, at, fact| e.invoice(conn, &at, &fact)
                )
            }
            v1::PaymentAttempted::TYPE => {
                let fact: v1::PaymentAttempted = message.decode()?;
                if fact.succeeded {
                    // A success settles nothing by itself: the invoice's own update does.
                    return Ok(());
                }
                let at = Self::origin(
                    message,
                    tenant,
                    fact.context.as_ref(),
                    &fact.stripe_customer_id,
                )?;
                once(&self.pool, "payments", message, &self.relay, move |conn| {
                    async move {
                        crate::state::lock_customer(conn, &at.tenant, &at.customer).await?;
                        Ok(engine.payment_failed(conn, &at, &fact).await?)
                    }
                    .boxed()
                })
                .await
            }
            v1::SubscriptionChanged::TYPE => run!(
                message.decode::<v1::SubscriptionChanged>()?,
                "subscriptions",
                |e, conn, at, fact| e.subscription(conn, &at, &fact)
            ),
            v1::CustomerUpserted::TYPE => {
                run!(
                    message.decode::<v1::CustomerUpserted>()?,
                    "customers",
                    |e, conn, at, fact| e.customer(conn, &at, &fact)
                )
            }
            v1::DisputeChanged::TYPE => run!(
                message.decode::<v1::DisputeChanged>()?,
                "disputes",
                |e, conn, at, fact| e.dispute(conn, &at, &fact)
            ),
            v1::PaymentMethodUpdated::TYPE => {
                let card: v1::PaymentMethodUpdated = message.decode()?;
                if card.stripe_customer_id.is_empty() {
                    // A card that belongs to no customer cannot be anyone's default.
                    return Ok(());
                }
                run!(card, "payment_methods", |e, conn, at, fact| e
                    .payment_method(conn, &at, &fact))
            }
            other => {
                // A fact kind this release does not use: acknowledged, nothing to do.
                tracing::debug!(message_type = other, "billing fact ignored");
                Ok(())
            }
        }
    }
}

/// `matching` `link.changed`.
pub struct Links {
    pub pool: PgPool,
    pub engine: Arc<Engine>,
    pub relay: Arc<Notify>,
}

impl Handler for Links {
    async fn handle(&self, message: &Incoming) -> Result<(), HandleError> {
        let tenant = message.tenant()?;
        let fact: v1::CustomerLinkChanged = message.decode()?;
        if fact.tenant_id != tenant.as_str() || fact.stripe_customer_id.is_empty() {
            return Err(HandleError::permanent(anyhow::anyhow!(
                "link {} does not match its tenant header or names no customer",
                message.message_id
            )));
        }
        let engine = self.engine.clone();
        once(&self.pool, "links", message, &self.relay, move |conn| {
            async move {
                crate::state::lock_customer(conn, &fact.tenant_id, &fact.stripe_customer_id)
                    .await?;
                Ok(engine.link(conn, &fact, chrono::Utc::now()).await?)
            }
            .boxed()
        })
        .await
    }
}

/// `risk` `rule.requested`.
pub struct Rules {
    pub pool: PgPool,
    pub relay: Arc<Notify>,
}

/// Reads a rule request; `None` for a deletion.
pub fn rule_of(request: &v1::AlertRuleRequested) -> Result<Option<AlertRule>, String> {
    if request.rule_id.trim().is_empty() {
        return Err("rule request without a rule_id".into());
    }
    if request.delete {
        return Ok(None);
    }
    if request.csm_user_id.trim().is_empty() {
        return Err(format!("rule {} names no CSM", request.rule_id));
    }
    let kinds = request
        .kinds
        .iter()
        .map(|k| k.parse::<SignalKind>().map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let min_severity: Severity = if request.min_severity.is_empty() {
        Severity::Low
    } else {
        request
            .min_severity
            .parse()
            .map_err(|e: domain::risk::UnknownSeverity| e.to_string())?
    };
    let scope = alerts::parse_scope(if request.scope.is_empty() {
        "mine"
    } else {
        &request.scope
    })
    .ok_or_else(|| format!("scope must be mine or tenant, not {:?}", request.scope))?;
    let digest = alerts::parse_delivery(if request.delivery.is_empty() {
        "immediate"
    } else {
        &request.delivery
    })
    .ok_or_else(|| {
        format!(
            "delivery must be immediate or hourly, not {:?}",
            request.delivery
        )
    })?;
    Ok(Some(AlertRule {
        csm_user_id: request.csm_user_id.trim().to_owned(),
        kinds,
        min_severity,
        scope,
        digest,
    }))
}

impl Handler for Rules {
    async fn handle(&self, message: &Incoming) -> Result<(), HandleError> {
        let tenant = message.tenant()?.into_string();
        let request: v1::AlertRuleRequested = message.decode()?;
        let rule = rule_of(&request).map_err(|e| HandleError::permanent(anyhow::anyhow!(e)))?;
        once(&self.pool, "rules", message, &self.relay, move |conn| {
            async move {
                let actor = if request.actor.is_empty() { request.csm_user_id.clone() } else { request.actor.clone() };
                alerts::save_rule(conn, &tenant, &request.rule_id, rule.as_ref().map(|r| (r, actor.as_str()))).await?;
                tracing::info!(tenant = %tenant, rule = %request.rule_id, deleted = request.delete, "alert rule saved");
                Ok(Vec::new())
            }
            .boxed()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> v1::AlertRuleRequested {
        v1::AlertRuleRequested {
            request_id: "r".into(),
            rule_id: "rule-1".into(),
            csm_user_id: "csm-1".into(),
            kinds: vec!["payment_failed".into()],
            min_severity: "high".into(),
            scope: "tenant".into(),
            delivery: "hourly".into(),
            ..Default::default()
        }
    }

    #[test]
    fn rule_requests_are_read_with_defaults_and_refused_when_wrong() {
        let rule = rule_of(&request()).unwrap().unwrap();
        assert_eq!(rule.kinds, [SignalKind::PaymentFailed]);
        assert_eq!(rule.min_severity, Severity::High);
        assert_eq!(rule.scope, domain::risk::AlertScope::Tenant);
        assert_eq!(rule.digest, domain::risk::DigestMode::Hourly);
        let defaults = rule_of(&v1::AlertRuleRequested {
            min_severity: String::new(),
            scope: String::new(),
            delivery: String::new(),
            kinds: vec![],
            ..request()
        })
        .unwrap()
        .unwrap();
        assert_eq!(defaults.min_severity, Severity::Low);
        assert_eq!(defaults.scope, domain::risk::AlertScope::Mine);
        assert!(defaults.kinds.is_empty(), "empty = every kind");
        assert_eq!(
            rule_of(&v1::AlertRuleRequested {
                delete: true,
                ..request()
            })
            .unwrap(),
            None
        );
        for bad in [
            v1::AlertRuleRequested {
                kinds: vec!["cheese".into()],
                ..request()
            },
            v1::AlertRuleRequested {
                min_severity: "urgent".into(),
                ..request()
            },
            v1::AlertRuleRequested {
                scope: "everyone".into(),
                ..request()
            },
            v1::AlertRuleRequested {
                delivery: "weekly".into(),
                ..request()
            },
            v1::AlertRuleRequested {
                rule_id: " ".into(),
                ..request()
            },
            v1::AlertRuleRequested {
                csm_user_id: String::new(),
                ..request()
            },
        ] {
            assert!(rule_of(&bad).is_err(), "{bad:?}");
        }
    }
}
