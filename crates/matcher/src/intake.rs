//! The matcher's consumers. Each applies one message in one transaction — its inbox record,
//! the state change, and the re-match work it causes — then wakes the re-matcher. Deciding
//! links is left to [`crate::rematch`], which batches the work per tenant.
//!
//! - `cscx.accounts`: accounts upserted / deleted (platform messages and `billingctl
//!   import-accounts`); any change queues a re-match of the whole tenant.
//! - `billing` `customer.*`: Stripe customers as synced; a change queues that customer.
//! - `matching` `decision.requested`: a person's decision (query-api, billingctl).
//!
//! A message without a valid tenant, or that cannot be decoded, is dead-lettered with the
//! reason: retrying cannot fix it.

use std::sync::Arc;

use contracts::{v1, Contract as _};
use diesel_async::{AsyncConnection as _, AsyncPgConnection};
use futures_util::future::BoxFuture;
use futures_util::FutureExt as _;
use platform::amqp::{HandleError, Handler, Incoming};
use platform::db::PgPool;
use tokio::sync::Notify;

use crate::decide::{KnownCustomer, Manual};
use crate::store::{self, AccountRow, DecisionLogEntry};

const SCHEMA: &str = "matching";

/// Runs `apply` in a transaction after recording the message in the inbox; a repeat is
/// skipped. `apply` returns whether re-match work was queued.
async fn once<F>(
    pool: &PgPool,
    consumer: &'static str,
    message: &Incoming,
    wake: &Notify,
    apply: F,
) -> Result<(), HandleError>
where
    F: for<'c> FnOnce(&'c mut AsyncPgConnection) -> BoxFuture<'c, diesel::QueryResult<bool>>
        + Send
        + 'static,
{
    let mut conn = pool.get().await.map_err(HandleError::transient)?;
    let id = message.message_id.clone();
    let queued = conn
        .transaction::<_, diesel::result::Error, _>(async move |conn| {
            if !platform::inbox::first_delivery(conn, SCHEMA, consumer, &id).await? {
                return Ok(false);
            }
            apply(conn).await
        })
        .await
        .map_err(HandleError::transient)?;
    if queued {
        wake.notify_one();
    }
    Ok(())
}

/// `cscx.accounts`.
pub struct Accounts {
    pub pool: PgPool,
    pub wake: Arc<Notify>,
}

impl Handler for Accounts {
    async fn handle(&self, message: &Incoming) -> Result<(), HandleError> {
        let tenant = message.tenant()?;
        let tenant = tenant.as_str();
        if message.message_type == v1::CscxAccountDeleted::TYPE
            || message.routing_key == "account.deleted"
        {
            let deleted: v1::CscxAccountDeleted = message.decode()?;
            if deleted.account_id.trim().is_empty() {
                return Err(HandleError::permanent(anyhow::anyhow!(
                    "account deletion without an account_id"
                )));
            }
            let at = if deleted.deleted_at_ms > 0 {
                deleted.deleted_at_ms
            } else {
                chrono::Utc::now().timestamp_millis()
            };
            let tenant = tenant.to_owned();
            return once(&self.pool, "accounts", message, &self.wake, move |conn| {
                async move {
                    if !store::delete_account(conn, &tenant, &deleted.account_id, at).await? {
                        return Ok(false);
                    }
                    store::bump_accounts_version(conn, &tenant).await?;
                    store::mark_pending(conn, &tenant, None).await?;
                    Ok(true)
                }
                .boxed()
            })
            .await;
        }
        let account: v1::CscxAccountUpserted = message.decode()?;
        let row = account_row(&account)?;
        let tenant = tenant.to_owned();
        once(&self.pool, "accounts", message, &self.wake, move |conn| {
            async move {
                if !store::upsert_account(conn, &tenant, &row).await? {
                    return Ok(false);
                }
                store::bump_accounts_version(conn, &tenant).await?;
                store::mark_pending(conn, &tenant, None).await?;
                Ok(true)
            }
            .boxed()
        })
        .await
    }
}

fn account_row(account: &v1::CscxAccountUpserted) -> Result<AccountRow, HandleError> {
    let id = account.account_id.trim();
    if id.is_empty() || account.name.trim().is_empty() {
        return Err(HandleError::permanent(anyhow::anyhow!(
            "account {id:?} needs an account_id and a name"
        )));
    }
    let mut domains: Vec<String> = account
        .domains
        .iter()
        .map(|d| d.trim().to_ascii_lowercase())
        .filter(|d| !d.is_empty())
        .collect();
    domains.sort();
    domains.dedup();
    let mut external_ids: Vec<String> = account
        .external_ids
        .iter()
        .map(|d| d.trim().to_owned())
        .filter(|d| !d.is_empty())
        .collect();
    external_ids.sort();
    external_ids.dedup();
    let csm = account.csm_user_id.trim();
    Ok(AccountRow {
        account_id: id.to_owned(),
        name: account.name.trim().to_owned(),
        domains,
        external_ids,
        csm_user_id: (!csm.is_empty()).then(|| csm.to_owned()),
        // Messages without a time (old importers) count as "now".
        source_updated_ms: if account.updated_at_ms > 0 {
            account.updated_at_ms
        } else {
            chrono::Utc::now().timestamp_millis()
        },
    })
}

/// `billing` `customer.upserted`.
pub struct Customers {
    pub pool: PgPool,
    pub wake: Arc<Notify>,
}

impl Handler for Customers {
    async fn handle(&self, message: &Incoming) -> Result<(), HandleError> {
        let tenant = message.tenant()?;
        let tenant = tenant.as_str();
        let fact: v1::CustomerUpserted = message.decode()?;
        let context = fact.context.clone().unwrap_or_default();
        if !context.tenant_id.is_empty() && context.tenant_id != tenant {
            return Err(HandleError::permanent(anyhow::anyhow!(
                "fact for tenant {} arrived with header tenant {tenant}",
                context.tenant_id
            )));
        }
        if fact.stripe_customer_id.is_empty() || context.account_id.is_empty() {
            return Err(HandleError::permanent(anyhow::anyhow!(
                "customer fact without a customer or account id"
            )));
        }
        let customer = KnownCustomer {
            stripe_customer_id: fact.stripe_customer_id.clone(),
            stripe_account_id: context.account_id.clone(),
            email: (!fact.email.is_empty()).then(|| fact.email.clone()),
            name: (!fact.name.is_empty()).then(|| fact.name.clone()),
            metadata: store::metadata(&fact.metadata),
            deleted: fact.deleted,
        };
        let tenant = tenant.to_owned();
        let occurred_at = context.occurred_at;
        once(&self.pool, "customers", message, &self.wake, move |conn| {
            async move {
                if !store::upsert_customer(conn, &tenant, &customer, occurred_at).await? {
                    return Ok(false);
                }
                store::mark_pending(conn, &tenant, Some(&customer.stripe_customer_id)).await?;
                Ok(true)
            }
            .boxed()
        })
        .await
    }
}

/// `matching` `decision.requested`.
pub struct Decisions {
    pub pool: PgPool,
    pub wake: Arc<Notify>,
}

impl Handler for Decisions {
    async fn handle(&self, message: &Incoming) -> Result<(), HandleError> {
        use v1::manual_decision_requested::Action;
        let tenant = message.tenant()?;
        let tenant = tenant.as_str();
        let request: v1::ManualDecisionRequested = message.decode()?;
        let action = Action::try_from(request.action).unwrap_or(Action::Unspecified);
        if request.stripe_customer_id.is_empty() || request.actor.trim().is_empty() {
            return Err(HandleError::permanent(anyhow::anyhow!(
                "decision {} needs a stripe_customer_id and an actor",
                request.request_id
            )));
        }
        if action == Action::Unspecified || (action == Action::Set && request.account_id.is_empty())
        {
            return Err(HandleError::permanent(anyhow::anyhow!(
                "decision {} has no valid action (SET needs an account_id)",
                request.request_id
            )));
        }
        let tenant = tenant.to_owned();
        once(&self.pool, "decisions", message, &self.wake, move |conn| {
            async move {
                let tenant = tenant.as_str();
                let outcome = apply_decision(conn, tenant, &request, action).await?;
                let account =
                    (!request.account_id.is_empty()).then_some(request.account_id.as_str());
                let note = (!request.note.is_empty()).then_some(request.note.as_str());
                store::log_decision(
                    conn,
                    tenant,
                    &DecisionLogEntry {
                        request_id: &request.request_id,
                        stripe_customer_id: &request.stripe_customer_id,
                        action: action.as_str_name(),
                        account_id: account,
                        actor: &request.actor,
                        note,
                        outcome: &outcome,
                    },
                )
                .await?;
                tracing::info!(tenant, customer = %request.stripe_customer_id, action = action.as_str_name(), actor = %request.actor, outcome = %outcome, "manual decision");
                store::mark_pending(conn, tenant, Some(&request.stripe_customer_id)).await?;
                Ok(true)
            }
            .boxed()
        })
        .await
    }
}

/// Applies a decision to the customer's standing manual decisions; returns what happened
/// (for the decision log).
async fn apply_decision(
    conn: &mut AsyncPgConnection,
    tenant: &str,
    request: &v1::ManualDecisionRequested,
    action: v1::manual_decision_requested::Action,
) -> Result<String, diesel::result::Error> {
    use v1::manual_decision_requested::Action;
    let customer = request.stripe_customer_id.as_str();
    let held = store::manual_decision(conn, tenant, customer).await?;
    let note = (!request.note.trim().is_empty()).then(|| request.note.trim().to_owned());
    let mut manual = held.clone().unwrap_or_default();
    manual.decided_by = request.actor.clone();
    manual.note = note;
    let next: Option<Manual> = match action {
        Action::Clear => None,
        Action::Set => {
            if !store::account_exists(conn, tenant, &request.account_id).await? {
                return Ok(format!("refused: no account {}", request.account_id));
            }
            manual.pinned_account_id = Some(request.account_id.clone());
            manual.pinned_none = false;
            manual
                .excluded_account_ids
                .retain(|a| a != &request.account_id);
            Some(manual)
        }
        Action::Confirm => {
            let ids = [customer.to_owned()];
            let current = store::links(conn, tenant, Some(&ids))
                .await?
                .remove(customer)
                .and_then(|l| l.outcome.account_id);
            let Some(account) = current else {
                return Ok("refused: the customer has no link to confirm".into());
            };
            if !request.account_id.is_empty() && request.account_id != account {
                return Ok(format!(
                    "refused: the customer is linked to {account}, not {}",
                    request.account_id
                ));
            }
            manual.pinned_account_id = Some(account);
            manual.pinned_none = false;
            Some(manual)
        }
        Action::Reject if request.account_id.is_empty() => {
            manual.pinned_account_id = None;
            manual.pinned_none = true;
            Some(manual)
        }
        Action::Reject => {
            if manual.pinned_account_id.as_deref() == Some(request.account_id.as_str()) {
                manual.pinned_account_id = None;
            }
            if !manual.excluded_account_ids.contains(&request.account_id) {
                manual.excluded_account_ids.push(request.account_id.clone());
                manual.excluded_account_ids.sort();
            }
            Some(manual)
        }
        Action::Unspecified => return Ok("refused: no action".into()),
    };
    store::save_manual_decision(conn, tenant, customer, next.as_ref()).await?;
    Ok("applied".into())
}
