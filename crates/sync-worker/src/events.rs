//! Live updates: applies each verified Stripe event from `stripe.events` to `billing`,
//! idempotently and whatever the delivery order.
//!
//! - Newer only: an event older than the state we hold is skipped; one from the same second
//!   (or whose object we cannot use as sent, e.g. discounts not expanded) is refetched from
//!   the API and applied as of the fetch.
//! - Deletions are terminal: a deleted object is never resurrected by a late event.
//! - Exactly once: the event id goes into `billing.inbox` in the transaction of its effects,
//!   together with the facts for the `billing` exchange (outbox). Ack follows the commit.

use std::sync::Arc;

use chrono::Utc;
use contracts::v1::StripeEventReceived;
use diesel::sql_types::{BigInt, Bool, Text};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use platform::amqp::{HandleError, Handler, Incoming, Outgoing};
use platform::db::PgPool;
use prost::Message as _;
use serde_json::Value;
use stripe_api::stripe_shared::{
    Charge, Coupon, Customer, Dispute, Invoice, PaymentMethod, Price, Product, Subscription,
};

use crate::connections::{Connection, Connections};
use crate::disputes::{self, DisputeWriteError};
use crate::facts;
use crate::rows::{self, Scope};
use crate::store;
use crate::subscriptions::{self, Source};

pub const CONSUMER: &str = "sync-worker.stripe-events";

/// The objects we keep, by Stripe's `object` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Customer,
    Subscription,
    Invoice,
    Charge,
    PaymentMethod,
    Price,
    Product,
    Coupon,
    /// `charge.dispute.created|updated|closed|funds_withdrawn|funds_reinstated`.
    Dispute,
}

impl Kind {
    pub fn of(object: &str) -> Option<Kind> {
        Some(match object {
            "customer" => Kind::Customer,
            "subscription" => Kind::Subscription,
            "invoice" => Kind::Invoice,
            "charge" => Kind::Charge,
            "payment_method" => Kind::PaymentMethod,
            "price" => Kind::Price,
            "product" => Kind::Product,
            "coupon" => Kind::Coupon,
            "dispute" => Kind::Dispute,
            _ => return None,
        })
    }

    /// The kind of a Stripe id, by its prefix (coupons have free-form ids: none).
    pub fn of_id(id: &str) -> Option<Kind> {
        let prefix = id.split_once('_')?.0;
        Some(match prefix {
            "cus" => Kind::Customer,
            "sub" => Kind::Subscription,
            "in" => Kind::Invoice,
            "ch" | "py" => Kind::Charge,
            "pm" | "card" => Kind::PaymentMethod,
            "price" | "plan" => Kind::Price,
            "prod" => Kind::Product,
            "dp" | "du" => Kind::Dispute,
            _ => return None,
        })
    }

    fn object_name(self) -> &'static str {
        match self {
            Kind::Customer => "customer",
            Kind::Subscription => "subscription",
            Kind::Invoice => "invoice",
            Kind::Charge => "charge",
            Kind::PaymentMethod => "payment_method",
            Kind::Price => "price",
            Kind::Product => "product",
            Kind::Coupon => "coupon",
            Kind::Dispute => "dispute",
        }
    }

    /// Table and id column holding the object's version (`source_created`).
    fn version_source(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Kind::Customer => (
                "stripe_customers",
                "stripe_customer_id",
                "deleted_at IS NOT NULL",
            ),
            Kind::Subscription => (
                "stripe_subscriptions",
                "stripe_subscription_id",
                "deleted_at IS NOT NULL",
            ),
            Kind::Invoice => (
                "stripe_invoices",
                "stripe_invoice_id",
                "deleted_at IS NOT NULL",
            ),
            Kind::Charge => ("payment_attempts", "charge_id", "false"),
            Kind::PaymentMethod => (
                "payment_methods",
                "payment_method_id",
                "detached_at IS NOT NULL",
            ),
            Kind::Price => ("prices", "price_id", "false"),
            Kind::Product => ("products", "product_id", "false"),
            Kind::Coupon => ("coupons", "coupon_id", "false"),
            Kind::Dispute => ("disputes", "dispute_id", "false"),
        }
    }

    /// API path to refetch the object, and the expansions the mapping needs.
    fn retrieve(self, id: &str) -> (&'static str, String, &'static [&'static str]) {
        match self {
            Kind::Customer => ("customers.retrieve", format!("/customers/{id}"), &[]),
            Kind::Subscription => (
                "subscriptions.retrieve",
                format!("/subscriptions/{id}"),
                &["discounts", "items.data.discounts"],
            ),
            Kind::Invoice => (
                "invoices.retrieve",
                format!("/invoices/{id}"),
                &["payments"],
            ),
            Kind::Charge => ("charges.retrieve", format!("/charges/{id}"), &[]),
            Kind::PaymentMethod => (
                "payment_methods.retrieve",
                format!("/payment_methods/{id}"),
                &[],
            ),
            Kind::Price => ("prices.retrieve", format!("/prices/{id}"), &["tiers"]),
            Kind::Product => ("products.retrieve", format!("/products/{id}"), &[]),
            Kind::Coupon => ("coupons.retrieve", format!("/coupons/{id}"), &[]),
            // The charge names the dispute's customer.
            Kind::Dispute => ("disputes.retrieve", format!("/disputes/{id}"), &["charge"]),
        }
    }
}

/// What an event means for its object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Upsert,
    /// Terminal: `customer.deleted`, `invoice.deleted`, `product.deleted`, …
    Delete,
    /// `payment_method.detached`: the card no longer belongs to the customer.
    Detach,
}

pub fn effect(event_type: &str) -> Effect {
    if event_type == "payment_method.detached" {
        Effect::Detach
    } else if event_type.ends_with(".deleted") && event_type != "customer.subscription.deleted" {
        // `customer.subscription.deleted` is a cancellation: the object (status canceled)
        // is applied like any update.
        Effect::Delete
    } else {
        Effect::Upsert
    }
}

/// What to do given the version we hold and the event's time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Apply,
    /// Same second as what we hold: which came first is unknowable, ask Stripe.
    Refetch,
    Stale,
    /// Deleted or detached before: stays so.
    Terminal,
}

/// Seconds around the held state's time in which an event's order is in doubt: our API
/// reads are stamped with our clock, events with Stripe's; within this window (and on exact
/// ties) the object is refetched instead of guessed.
pub const DOUBT_WINDOW_SECS: i64 = 5;

pub fn decide(held: Option<(i64, bool)>, event_created: i64) -> Decision {
    match held {
        None => Decision::Apply,
        Some((_, true)) => Decision::Terminal,
        Some((held, false)) if event_created < held - DOUBT_WINDOW_SECS => Decision::Stale,
        Some((held, false)) if event_created <= held + DOUBT_WINDOW_SECS => Decision::Refetch,
        Some(_) => Decision::Apply,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{0}")]
    Permanent(String),
    #[error("{0}")]
    Transient(String),
}

impl From<diesel::result::Error> for ApplyError {
    fn from(e: diesel::result::Error) -> Self {
        ApplyError::Transient(format!("database: {e}"))
    }
}

impl From<stripe_api::ApiError> for ApplyError {
    fn from(e: stripe_api::ApiError) -> Self {
        if e.is_transient() {
            ApplyError::Transient(e.to_string())
        } else {
            ApplyError::Permanent(e.to_string())
        }
    }
}

impl From<ApplyError> for HandleError {
    fn from(e: ApplyError) -> Self {
        match e {
            ApplyError::Permanent(m) => HandleError::permanent(anyhow::anyhow!(m)),
            ApplyError::Transient(m) => HandleError::transient(anyhow::anyhow!(m)),
        }
    }
}

pub struct EventApplier {
    pub pool: PgPool,
    pub connections: Arc<Connections>,
    /// Wakes the outbox relay after a commit, so facts go out at once.
    pub wake: Arc<tokio::sync::Notify>,
}

impl Handler for EventApplier {
    async fn handle(&self, message: &Incoming) -> Result<(), HandleError> {
        let started = std::time::Instant::now();
        let event = StripeEventReceived::decode(message.payload.as_slice()).map_err(|e| {
            HandleError::permanent(anyhow::anyhow!("not a StripeEventReceived: {e}"))
        })?;
        let body: Value = serde_json::from_slice(&event.payload).map_err(|e| {
            HandleError::permanent(anyhow::anyhow!(
                "event {} payload is not JSON: {e}",
                event.event_id
            ))
        })?;
        let object = &body["data"]["object"];
        let Some(kind) = object["object"].as_str().and_then(Kind::of) else {
            metrics::counter!("sync_events_total", "outcome" => "ignored").increment(1);
            return Ok(());
        };
        let Some(id) = object["id"].as_str().map(str::to_owned) else {
            return Err(HandleError::permanent(anyhow::anyhow!(
                "event {} carries a {kind:?} without an id",
                event.event_id
            )));
        };
        let connection = self.connection_for(message, &event).await?;
        let dedupe_id = if event.event_id.is_empty() {
            message.message_id.clone()
        } else {
            event.event_id.clone()
        };
        let outcome = self
            .apply(&connection, &event, kind, &id, object.clone(), &dedupe_id)
            .await
            .map_err(HandleError::from)?;
        metrics::counter!("sync_events_total", "outcome" => outcome).increment(1);
        metrics::histogram!("sync_event_apply_seconds").record(started.elapsed().as_secs_f64());
        self.wake.notify_one();
        Ok(())
    }
}

impl EventApplier {
    async fn connection_for(
        &self,
        message: &Incoming,
        event: &StripeEventReceived,
    ) -> Result<Connection, HandleError> {
        let Some(tenant) = message.tenant_id.as_deref().filter(|t| !t.is_empty()) else {
            return Err(HandleError::permanent(anyhow::anyhow!(
                "event {} has no tenant (no active connection for account {:?})",
                event.event_id,
                event.account
            )));
        };
        let found = if event.account.is_empty() {
            self.connections.only_for_tenant(tenant).await
        } else {
            self.connections.for_account(tenant, &event.account).await
        };
        found.map_err(|e| {
            if e.is_transient() {
                HandleError::transient(e)
            } else {
                HandleError::permanent(e)
            }
        })
    }

    async fn apply(
        &self,
        connection: &Connection,
        event: &StripeEventReceived,
        kind: Kind,
        id: &str,
        object: Value,
        dedupe_id: &str,
    ) -> Result<&'static str, ApplyError> {
        apply_in_transaction(&self.pool, connection, event, kind, id, object, dedupe_id).await
    }
}

async fn apply_in_transaction(
    pool: &PgPool,
    connection: &Connection,
    event: &StripeEventReceived,
    kind: Kind,
    id: &str,
    object: Value,
    dedupe_id: &str,
) -> Result<&'static str, ApplyError> {
    let mut conn = pool
        .get()
        .await
        .map_err(|e| ApplyError::Transient(format!("database pool: {e}")))?;
    if already_applied(&mut conn, dedupe_id).await? {
        return Ok("duplicate");
    }
    let connection = connection.clone();
    let event = event.clone();
    let id = id.to_owned();
    let dedupe_id = dedupe_id.to_owned();
    // Everything under a per-object lock: two events about one object (often in the
    // same second) never decide on the same held state concurrently.
    conn.transaction::<_, ApplyError, _>(async move |conn| {
        lock_object(conn, &connection.scope, &id).await?;
        if !platform::inbox::first_delivery(conn, "billing", CONSUMER, &dedupe_id).await? {
            return Ok("duplicate");
        }
        decide_and_write(conn, &connection, &event, kind, &id, object).await
    })
    .await
}

/// Applies one Stripe event (as JSON, the way Stripe renders it) for `connection`: the
/// shared path of webhooks and reconciliation, deduplicated by event id.
pub async fn apply_event(
    pool: &PgPool,
    connection: &Connection,
    event: &Value,
) -> Result<&'static str, ApplyError> {
    let object = &event["data"]["object"];
    let Some(kind) = object["object"].as_str().and_then(Kind::of) else {
        return Ok("ignored");
    };
    let (Some(id), Some(event_id)) = (object["id"].as_str(), event["id"].as_str()) else {
        return Err(ApplyError::Permanent(
            "an event or its object has no id".into(),
        ));
    };
    let received = StripeEventReceived {
        event_id: event_id.to_owned(),
        event_type: event["type"].as_str().unwrap_or_default().to_owned(),
        account: event["account"].as_str().unwrap_or_default().to_owned(),
        created: event["created"].as_i64().unwrap_or_default(),
        ..Default::default()
    };
    apply_in_transaction(
        pool,
        connection,
        &received,
        kind,
        id,
        object.clone(),
        event_id,
    )
    .await
}

/// Refetches one object (a `REFETCH` job: an operator's or a consumer's doubt) and applies
/// it as of the read, through the same path as events. `cause` makes it idempotent.
pub async fn refetch_object(
    pool: &PgPool,
    connection: &Connection,
    id: &str,
    cause: &str,
) -> Result<&'static str, ApplyError> {
    let kind = Kind::of_id(id).ok_or_else(|| {
        ApplyError::Permanent(format!("cannot tell what kind of object {id:?} is"))
    })?;
    let mut object = refetch(connection, kind, id).await?;
    object["object"] = Value::String(kind.object_name().to_owned());
    let event = serde_json::json!({
        "id": format!("refetch:{cause}"),
        "type": format!("{}.refetched", kind.object_name()),
        "created": Utc::now().timestamp(),
        "data": {"object": object},
    });
    apply_event(pool, connection, &event).await
}

/// Serialises work on one Stripe object across consumers until the transaction ends.
async fn lock_object(
    conn: &mut AsyncPgConnection,
    scope: &Scope,
    id: &str,
) -> Result<(), ApplyError> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind::<Text, _>(format!("{}/{}/{}", scope.tenant_id, scope.account_id, id))
        .execute(conn)
        .await?;
    Ok(())
}

async fn decide_and_write(
    conn: &mut AsyncPgConnection,
    connection: &Connection,
    event: &StripeEventReceived,
    kind: Kind,
    id: &str,
    object: Value,
) -> Result<&'static str, ApplyError> {
    let scope = &connection.scope;
    let effect = effect(&event.event_type);
    let held = held_version(conn, kind, scope, id).await?;
    let mut source = Source {
        kind: "event",
        event_id: Some(event.event_id.clone()),
        created: event.created,
    };
    let decision = match effect {
        Effect::Delete | Effect::Detach => Decision::Apply,
        Effect::Upsert => decide(held, event.created),
    };
    let mut object = object;
    match decision {
        Decision::Stale => return Ok("stale"),
        Decision::Terminal => return Ok("terminal"),
        Decision::Refetch => {
            object = refetch(connection, kind, id).await?;
            // The refetched state is at least as new as the event, whichever clock (ours
            // or Stripe's) runs ahead.
            source.kind = "refetch";
            source.created = Utc::now().timestamp().max(event.created);
        }
        Decision::Apply => {}
    }
    if effect == Effect::Upsert
        && (needs_refetch(kind, &object)
            || payments_unknown(conn, kind, scope, id, &object).await?)
    {
        object = refetch(connection, kind, id).await?;
        source.kind = "refetch";
        source.created = source.created.max(Utc::now().timestamp());
    }
    if object.get("deleted").and_then(Value::as_bool) == Some(true) {
        // Refetched and gone at Stripe: the deletion event may still be on its way.
        mark_deleted(conn, kind, scope.clone(), id.to_owned(), source).await?;
        return Ok("deleted");
    }
    if kind == Kind::Subscription && effect == Effect::Upsert {
        ensure_catalog(conn, connection, &object).await?;
    }
    match effect {
        Effect::Delete => mark_deleted(conn, kind, scope.clone(), id.to_owned(), source).await?,
        Effect::Detach => detach(conn, scope, id, &source).await?,
        Effect::Upsert if kind == Kind::Dispute => {
            apply_dispute(conn, connection, object, &source).await?
        }
        Effect::Upsert => upsert(conn, kind, scope, object, &source).await?,
    }
    Ok(match decision {
        Decision::Refetch => "refetched",
        _ => "applied",
    })
}

async fn already_applied(
    conn: &mut AsyncPgConnection,
    dedupe_id: &str,
) -> Result<bool, ApplyError> {
    #[derive(diesel::QueryableByName)]
    struct Found {
        #[diesel(sql_type = Bool)]
        found: bool,
    }
    let found: Found = diesel::sql_query(
        "SELECT EXISTS (SELECT 1 FROM billing.inbox WHERE consumer = $1 AND message_id = $2) AS found",
    )
    .bind::<Text, _>(CONSUMER)
    .bind::<Text, _>(dedupe_id)
    .get_result(conn)
    .await?;
    Ok(found.found)
}

/// `(source_created, terminal)` of what we hold for the object.
async fn held_version(
    conn: &mut AsyncPgConnection,
    kind: Kind,
    scope: &Scope,
    id: &str,
) -> Result<Option<(i64, bool)>, ApplyError> {
    #[derive(diesel::QueryableByName)]
    struct Held {
        #[diesel(sql_type = BigInt)]
        source_created: i64,
        #[diesel(sql_type = Bool)]
        terminal: bool,
    }
    let (table, column, terminal) = kind.version_source();
    let held: Option<Held> = diesel::sql_query(format!(
        "SELECT source_created, ({terminal}) AS terminal FROM billing.{table} \
         WHERE tenant_id = $1 AND account_id = $2 AND {column} = $3"
    ))
    .bind::<Text, _>(&scope.tenant_id)
    .bind::<Text, _>(&scope.account_id)
    .bind::<Text, _>(id)
    .get_result(conn)
    .await
    .map(Some)
    .or_else(|e| match e {
        diesel::result::Error::NotFound => Ok(None),
        e => Err(e),
    })?;
    Ok(held.map(|h| (h.source_created, h.terminal)))
}

/// Whether the object as sent cannot be mapped faithfully: webhooks carry discounts as ids.
fn needs_refetch(kind: Kind, object: &Value) -> bool {
    let bare_ids = |v: &Value| v.as_array().is_some_and(|a| a.iter().any(Value::is_string));
    match kind {
        Kind::Subscription => {
            bare_ids(&object["discounts"])
                || object["items"]["data"]
                    .as_array()
                    .is_some_and(|items| items.iter().any(|i| bare_ids(&i["discounts"])))
        }
        _ => false,
    }
}

/// An invoice that has been attempted but whose payment we do not hold yet: webhooks never
/// carry `payments`, the only link from an attempt to its invoice since basil, so it is
/// refetched with them once (later attempts reuse the same PaymentIntent).
async fn payments_unknown(
    conn: &mut AsyncPgConnection,
    kind: Kind,
    scope: &Scope,
    id: &str,
    object: &Value,
) -> Result<bool, ApplyError> {
    if kind != Kind::Invoice
        || object.get("payments").is_some()
        || object["attempt_count"].as_i64().unwrap_or(0) == 0
    {
        return Ok(false);
    }
    #[derive(diesel::QueryableByName)]
    struct Held {
        #[diesel(sql_type = Bool)]
        held: bool,
    }
    let held: Held = diesel::sql_query(
        "SELECT EXISTS (SELECT 1 FROM billing.invoice_payments \
         WHERE tenant_id = $1 AND account_id = $2 AND stripe_invoice_id = $3) AS held",
    )
    .bind::<Text, _>(&scope.tenant_id)
    .bind::<Text, _>(&scope.account_id)
    .bind::<Text, _>(id)
    .get_result(conn)
    .await?;
    Ok(!held.held)
}

async fn refetch(connection: &Connection, kind: Kind, id: &str) -> Result<Value, ApplyError> {
    let (op, path, expand) = kind.retrieve(id);
    match connection.api.get_object(op, path, expand).await {
        Ok(v) => Ok(v),
        // Gone at Stripe: treat as deleted (terminal), like a deletion event.
        Err(e) if e.is_not_found() => Ok(serde_json::json!({"id": id, "deleted": true})),
        Err(e) => Err(e.into()),
    }
}

/// Prices and coupons a subscription needs for its MRR, fetched when not yet stored.
async fn ensure_catalog(
    conn: &mut AsyncPgConnection,
    connection: &Connection,
    object: &Value,
) -> Result<(), ApplyError> {
    let scope = &connection.scope;
    let mut prices = Vec::new();
    for item in object["items"]["data"].as_array().into_iter().flatten() {
        if let Some(price) = item["price"]["id"].as_str() {
            prices.push(price.to_owned());
        }
    }
    let mut coupons = Vec::new();
    let discounts = object["discounts"].as_array().into_iter().flatten().chain(
        object["items"]["data"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|i| i["discounts"].as_array().into_iter().flatten()),
    );
    for d in discounts {
        let coupon = &d["source"]["coupon"];
        if let Some(c) = coupon.as_str().or_else(|| coupon["id"].as_str()) {
            coupons.push(c.to_owned());
        }
    }
    let now = Utc::now().timestamp();
    for price in prices {
        if held_version(conn, Kind::Price, scope, &price)
            .await?
            .is_none()
        {
            let json = refetch(connection, Kind::Price, &price).await?;
            let p: Price = parse(Kind::Price, json)?;
            let row = rows::price_row(scope, &p, now)
                .map_err(|e| ApplyError::Permanent(e.to_string()))?;
            store::prices(conn, &[row]).await?;
        }
    }
    for coupon in coupons {
        if held_version(conn, Kind::Coupon, scope, &coupon)
            .await?
            .is_none()
        {
            let json = refetch(connection, Kind::Coupon, &coupon).await?;
            let c: Coupon = parse(Kind::Coupon, json)?;
            let row = rows::coupon_row(scope, &c, now)
                .map_err(|e| ApplyError::Permanent(e.to_string()))?;
            store::coupons(conn, &[row]).await?;
        }
    }
    Ok(())
}

fn parse<T: serde::de::DeserializeOwned>(kind: Kind, object: Value) -> Result<T, ApplyError> {
    serde_path_to_error::deserialize(object).map_err(|e| {
        ApplyError::Permanent(format!("a {kind:?} Stripe sent does not read as one: {e}"))
    })
}

async fn upsert(
    conn: &mut AsyncPgConnection,
    kind: Kind,
    scope: &Scope,
    object: Value,
    source: &Source,
) -> Result<(), ApplyError> {
    let at = source.created;
    let mut out: Vec<Outgoing> = Vec::new();
    match kind {
        Kind::Customer => {
            let c: Customer = parse(kind, object)?;
            let row = rows::customer_row(scope, &c, at);
            if store::customers(conn, std::slice::from_ref(&row)).await? > 0 {
                out.push(facts::customer(&row, source));
            }
            if let Some(pm) = rows::default_card(&c) {
                let pm_row = rows::payment_method_row(scope, pm, at);
                store::payment_methods(conn, std::slice::from_ref(&pm_row)).await?;
            }
        }
        Kind::Subscription => {
            let s: Subscription = parse(kind, object)?;
            let catalog = store::catalog(conn, &scope.tenant_id, &scope.account_id)
                .await
                .map_err(|e| ApplyError::Transient(e.to_string()))?;
            subscriptions::apply(
                conn,
                scope,
                std::slice::from_ref(&s),
                &catalog,
                source.clone(),
            )
            .await?;
        }
        Kind::Invoice => {
            let i: Invoice = parse(kind, object)?;
            if let Some(rows_) = rows::invoice_rows(scope, &i, at) {
                let fact = facts::invoice(&rows_.invoice, source);
                if !store::invoices(conn, std::slice::from_ref(&rows_))
                    .await?
                    .is_empty()
                {
                    out.push(fact);
                }
            }
        }
        Kind::Charge => {
            let c: Charge = parse(kind, object)?;
            let row = rows::attempt_row(scope, &c, at);
            if !store::attempts(conn, std::slice::from_ref(&row))
                .await?
                .is_empty()
                && row.outcome != "pending"
            {
                out.push(facts::attempt(&row, source));
            }
        }
        Kind::PaymentMethod => {
            let pm: PaymentMethod = parse(kind, object)?;
            let row = rows::payment_method_row(scope, &pm, at);
            if store::payment_methods(conn, std::slice::from_ref(&row)).await? > 0 {
                out.push(facts::payment_method(&row, source));
            }
        }
        Kind::Price => {
            let p: Price = parse(kind, object)?;
            let row =
                rows::price_row(scope, &p, at).map_err(|e| ApplyError::Permanent(e.to_string()))?;
            store::prices(conn, &[row]).await?;
        }
        Kind::Product => {
            let p: Product = parse(kind, object)?;
            store::products(conn, &[rows::product_row(scope, &p, at)]).await?;
        }
        Kind::Coupon => {
            let c: Coupon = parse(kind, object)?;
            let row = rows::coupon_row(scope, &c, at)
                .map_err(|e| ApplyError::Permanent(e.to_string()))?;
            store::coupons(conn, &[row]).await?;
        }
        Kind::Dispute => {
            return Err(ApplyError::Permanent(
                "a dispute needs its connection to resolve its customer".into(),
            ))
        }
    }
    facts::enqueue(conn, &out).await?;
    Ok(())
}

impl From<DisputeWriteError> for ApplyError {
    fn from(e: DisputeWriteError) -> Self {
        match e {
            DisputeWriteError::Row(e) => ApplyError::Permanent(e.to_string()),
            DisputeWriteError::Database(e) => e.into(),
        }
    }
}

/// Applies disputes read at `source` (an event's object, a refetch or a re-list) for
/// `connection`: the customer comes through the charge — expanded, held, or fetched now
/// (and stored as its payment attempt, announced like a charge event).
pub async fn apply_disputes(
    conn: &mut AsyncPgConnection,
    connection: &Connection,
    disputes_read: &[Dispute],
    source: &Source,
) -> Result<usize, ApplyError> {
    let scope = &connection.scope;
    let mut customers = disputes::known_customers(conn, scope, disputes_read).await?;
    for d in disputes_read {
        let charge = rows::dispute_charge(d);
        if customers.contains_key(&charge) {
            continue;
        }
        let json = refetch(connection, Kind::Charge, &charge).await?;
        if json.get("deleted").and_then(Value::as_bool) == Some(true) {
            continue; // Stripe no longer has it: the dispute stays without a customer.
        }
        let fetched_at = Utc::now().timestamp();
        let c: Charge = parse(Kind::Charge, json)?;
        let row = rows::attempt_row(scope, &c, fetched_at);
        let read = Source {
            kind: "refetch",
            event_id: None,
            created: fetched_at,
        };
        if !store::attempts(conn, std::slice::from_ref(&row))
            .await?
            .is_empty()
            && row.outcome != "pending"
        {
            facts::enqueue(conn, &[facts::attempt(&row, &read)]).await?;
        }
        if let Some(customer) = row.stripe_customer_id {
            customers.insert(charge, customer);
        }
    }
    Ok(disputes::store(conn, scope, disputes_read, &customers, source).await?)
}

async fn apply_dispute(
    conn: &mut AsyncPgConnection,
    connection: &Connection,
    object: Value,
    source: &Source,
) -> Result<(), ApplyError> {
    let d: Dispute = parse(Kind::Dispute, object)?;
    apply_disputes(conn, connection, std::slice::from_ref(&d), source).await?;
    Ok(())
}

/// Marks the object deleted for good (a tombstone if we never saw it, so a late create
/// cannot resurrect it).
async fn mark_deleted(
    conn: &mut AsyncPgConnection,
    kind: Kind,
    scope: Scope,
    id: String,
    source: Source,
) -> Result<(), ApplyError> {
    let (table, column, _) = kind.version_source();
    match kind {
        Kind::Customer | Kind::Invoice | Kind::Subscription => {
            let updated = diesel::sql_query(format!(
                "UPDATE billing.{table} SET deleted_at = now(), source_created = GREATEST(source_created, $4) \
                 WHERE tenant_id = $1 AND account_id = $2 AND {column} = $3 AND deleted_at IS NULL"
            ))
            .bind::<Text, _>(&scope.tenant_id)
            .bind::<Text, _>(&scope.account_id)
            .bind::<Text, _>(&id)
            .bind::<BigInt, _>(source.created)
            .execute(conn)
            .await?;
            if updated == 0 && kind == Kind::Customer {
                diesel::sql_query(
                    "INSERT INTO billing.stripe_customers (tenant_id, account_id, stripe_customer_id, deleted_at, source_created) \
                     VALUES ($1, $2, $3, now(), $4) ON CONFLICT DO NOTHING",
                )
                .bind::<Text, _>(&scope.tenant_id)
                .bind::<Text, _>(&scope.account_id)
                .bind::<Text, _>(&id)
                .bind::<BigInt, _>(source.created)
                .execute(conn)
                .await?;
            }
            if kind == Kind::Customer && updated > 0 {
                let tombstone = rows::CustomerRow {
                    tenant_id: scope.tenant_id.clone(),
                    account_id: scope.account_id.clone(),
                    stripe_customer_id: id.clone(),
                    email: None,
                    name: None,
                    currency: None,
                    delinquent: false,
                    metadata: Value::Object(Default::default()),
                    default_payment_method: None,
                    created_at: None,
                    source_created: source.created,
                };
                let mut fact = facts::customer(&tombstone, &source);
                if let Ok(mut decoded) =
                    contracts::v1::CustomerUpserted::decode(fact.payload.as_slice())
                {
                    decoded.deleted = true;
                    fact.payload = decoded.encode_to_vec();
                    fact.message_id.push_str(":deleted");
                }
                facts::enqueue(conn, &[fact]).await?;
            }
        }
        // Catalog objects: deleting them would break the MRR of subscriptions still on
        // them (Stripe keeps serving archived prices on existing subscriptions). Charges and
        // disputes are never deleted at Stripe.
        Kind::Price
        | Kind::Product
        | Kind::Coupon
        | Kind::Charge
        | Kind::PaymentMethod
        | Kind::Dispute => {}
    }
    Ok(())
}

/// Marks the card detached and tells consumers (a detached card can no longer pay, and
/// Stripe's event no longer names its customer, so the fact carries the one we held).
async fn detach(
    conn: &mut AsyncPgConnection,
    scope: &Scope,
    id: &str,
    source: &Source,
) -> Result<(), ApplyError> {
    #[derive(diesel::QueryableByName)]
    struct Detached {
        #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
        stripe_customer_id: Option<String>,
        #[diesel(sql_type = Text)]
        kind: String,
        #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
        card_brand: Option<String>,
        #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
        card_last4: Option<String>,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::SmallInt>)]
        exp_month: Option<i16>,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::SmallInt>)]
        exp_year: Option<i16>,
    }
    let detached: Vec<Detached> = diesel::sql_query(
        "UPDATE billing.payment_methods SET detached_at = now(), source_created = GREATEST(source_created, $4) \
         WHERE tenant_id = $1 AND account_id = $2 AND payment_method_id = $3 AND detached_at IS NULL \
         RETURNING stripe_customer_id, kind, card_brand, card_last4, exp_month, exp_year",
    )
    .bind::<Text, _>(&scope.tenant_id)
    .bind::<Text, _>(&scope.account_id)
    .bind::<Text, _>(id)
    .bind::<BigInt, _>(source.created)
    .load(conn)
    .await?;
    let facts: Vec<_> = detached
        .into_iter()
        .map(|d| {
            let row = crate::rows::PaymentMethodRow {
                tenant_id: scope.tenant_id.clone(),
                account_id: scope.account_id.clone(),
                payment_method_id: id.to_owned(),
                stripe_customer_id: d.stripe_customer_id,
                kind: d.kind,
                card_brand: d.card_brand,
                card_last4: d.card_last4,
                exp_month: d.exp_month,
                exp_year: d.exp_year,
                source_created: source.created,
            };
            facts::payment_method_detached(&row, source)
        })
        .collect();
    facts::enqueue(conn, &facts).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletions_and_detachments_are_recognised() {
        assert_eq!(effect("customer.deleted"), Effect::Delete);
        assert_eq!(effect("invoice.deleted"), Effect::Delete);
        assert_eq!(effect("customer.subscription.deleted"), Effect::Upsert);
        assert_eq!(effect("payment_method.detached"), Effect::Detach);
        assert_eq!(effect("invoice.payment_failed"), Effect::Upsert);
        for dispute in [
            "charge.dispute.created",
            "charge.dispute.updated",
            "charge.dispute.closed",
            "charge.dispute.funds_withdrawn",
            "charge.dispute.funds_reinstated",
        ] {
            assert_eq!(effect(dispute), Effect::Upsert, "{dispute}");
        }
    }

    #[test]
    fn newer_only_with_ties_refetched() {
        let w = DOUBT_WINDOW_SECS;
        assert_eq!(decide(None, 100), Decision::Apply);
        assert_eq!(decide(Some((100 - w - 1, false)), 100), Decision::Apply);
        assert_eq!(decide(Some((100 - w, false)), 100), Decision::Refetch);
        assert_eq!(decide(Some((100, false)), 100), Decision::Refetch);
        assert_eq!(decide(Some((100 + w, false)), 100), Decision::Refetch);
        assert_eq!(decide(Some((100 + w + 1, false)), 100), Decision::Stale);
        assert_eq!(decide(Some((1, true)), 100), Decision::Terminal);
    }

    #[test]
    fn subscriptions_with_discount_ids_are_refetched() {
        let bare = serde_json::json!({"discounts": ["di_1"], "items": {"data": []}});
        let expanded = serde_json::json!({"discounts": [{"id": "di_1"}], "items": {"data": [{"discounts": []}]}});
        let item_bare =
            serde_json::json!({"discounts": [], "items": {"data": [{"discounts": ["di_2"]}]}});
        assert!(needs_refetch(Kind::Subscription, &bare));
        assert!(!needs_refetch(Kind::Subscription, &expanded));
        assert!(needs_refetch(Kind::Subscription, &item_bare));
        assert!(!needs_refetch(Kind::Invoice, &bare));
    }

    #[test]
    fn kinds_from_ids() {
        assert_eq!(Kind::of_id("cus_123"), Some(Kind::Customer));
        assert_eq!(Kind::of_id("sub_123"), Some(Kind::Subscription));
        assert_eq!(Kind::of_id("in_123"), Some(Kind::Invoice));
        assert_eq!(Kind::of_id("pm_123"), Some(Kind::PaymentMethod));
        assert_eq!(Kind::of_id("dp_123"), Some(Kind::Dispute));
        assert_eq!(Kind::of_id("du_123"), Some(Kind::Dispute));
        assert_eq!(Kind::of_id("SUMMER25"), None);
        assert_eq!(Kind::of_id("evt_1"), None);
    }

    #[test]
    fn object_kinds() {
        assert_eq!(Kind::of("subscription"), Some(Kind::Subscription));
        assert_eq!(Kind::of("dispute"), Some(Kind::Dispute));
        assert_eq!(Kind::of("balance"), None);
    }
}
