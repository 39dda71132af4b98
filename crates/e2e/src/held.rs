//! What we hold, read back from the services' schemas: the `billing` objects as a
//! [`Snapshot`], the open signals, and the messages that never reached their consumer.

use std::collections::{BTreeSet, HashSet};

use diesel::sql_types::{BigInt, Text};
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};

use crate::compare::{OpenSignal, Snapshot};

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    a: String,
    #[diesel(sql_type = Text)]
    b: String,
    #[diesel(sql_type = Text)]
    c: String,
    #[diesel(sql_type = Text)]
    d: String,
}

/// Every query selects `id` and up to four fields `a..d` as text (`∅` for NULL, `''`
/// for unused), from one tenant's platform account.
const QUERIES: [(&str, &str); 7] = [
    (
        "customer",
        "SELECT stripe_customer_id AS id, coalesce(email, '∅') AS a, coalesce(name, '∅') AS b, \
         delinquent::text AS c, coalesce(default_payment_method, '∅') AS d \
         FROM billing.stripe_customers WHERE tenant_id = $1 AND account_id = $2 AND deleted_at IS NULL",
    ),
    (
        "subscription",
        "SELECT stripe_subscription_id AS id, status AS a, cancel_at_period_end::text AS b, \
         stripe_customer_id AS c, '' AS d \
         FROM billing.stripe_subscriptions WHERE tenant_id = $1 AND account_id = $2 AND deleted_at IS NULL",
    ),
    (
        "subscription_item",
        "SELECT stripe_item_id AS id, stripe_subscription_id AS a, price_id AS b, \
         coalesce(quantity::text, '∅') AS c, '' AS d \
         FROM billing.subscription_items WHERE tenant_id = $1 AND account_id = $2",
    ),
    (
        "invoice",
        "SELECT stripe_invoice_id AS id, coalesce(status, '∅') AS a, amount_paid::text AS b, \
         amount_remaining::text AS c, attempt_count::text AS d \
         FROM billing.stripe_invoices WHERE tenant_id = $1 AND account_id = $2 AND deleted_at IS NULL",
    ),
    (
        "charge",
        "SELECT charge_id AS id, outcome AS a, coalesce(failure_code, '∅') AS b, '' AS c, '' AS d \
         FROM billing.payment_attempts WHERE tenant_id = $1 AND account_id = $2",
    ),
    (
        "payment_method",
        "SELECT payment_method_id AS id, coalesce(stripe_customer_id, '∅') AS a, \
         coalesce(exp_month::text, '∅') AS b, coalesce(exp_year::text, '∅') AS c, '' AS d \
         FROM billing.payment_methods p WHERE tenant_id = $1 AND account_id = $2 AND detached_at IS NULL \
         AND EXISTS (SELECT 1 FROM billing.stripe_customers c WHERE c.tenant_id = p.tenant_id \
         AND c.account_id = p.account_id AND c.default_payment_method = p.payment_method_id \
         AND c.deleted_at IS NULL)",
    ),
    (
        "dispute",
        "SELECT dispute_id AS id, status AS a, '' AS b, '' AS c, '' AS d \
         FROM billing.disputes WHERE tenant_id = $1 AND account_id = $2",
    ),
];

/// The `billing` objects, field for field as [`crate::stripe_truth::snapshot`] names them.
pub async fn snapshot(
    conn: &mut AsyncPgConnection,
    tenant: &str,
    account: &str,
) -> diesel::QueryResult<Snapshot> {
    let mut s = Snapshot::default();
    for (kind, sql) in QUERIES {
        let rows: Vec<Row> = diesel::sql_query(sql)
            .bind::<Text, _>(tenant)
            .bind::<Text, _>(account)
            .load(conn)
            .await?;
        for r in rows {
            match kind {
                "customer" => s.insert(
                    kind,
                    r.id,
                    [
                        ("email", r.a),
                        ("name", r.b),
                        ("delinquent", r.c),
                        ("default_payment_method", r.d),
                    ],
                ),
                "subscription" => s.insert(
                    kind,
                    r.id,
                    [
                        ("status", r.a),
                        ("cancel_at_period_end", r.b),
                        ("customer", r.c),
                    ],
                ),
                "subscription_item" => s.insert(
                    kind,
                    r.id,
                    [("subscription", r.a), ("price", r.b), ("quantity", r.c)],
                ),
                "invoice" => s.insert(
                    kind,
                    r.id,
                    [
                        ("status", r.a),
                        ("amount_paid", r.b),
                        ("amount_remaining", r.c),
                        ("attempt_count", r.d),
                    ],
                ),
                "charge" => s.insert(kind, r.id, [("outcome", r.a), ("failure_code", r.b)]),
                "payment_method" => s.insert(
                    kind,
                    r.id,
                    [("customer", r.a), ("exp_month", r.b), ("exp_year", r.c)],
                ),
                _ => s.insert(kind, r.id, [("status", r.a)]),
            }
        }
    }
    Ok(s)
}

#[derive(QueryableByName)]
struct Signal {
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    cause_key: String,
}

/// The tenant's open signals of `kinds`.
pub async fn open_signals(
    conn: &mut AsyncPgConnection,
    tenant: &str,
    kinds: &[&str],
) -> diesel::QueryResult<BTreeSet<OpenSignal>> {
    let kinds: Vec<String> = kinds.iter().map(|k| (*k).to_owned()).collect();
    let rows: Vec<Signal> = diesel::sql_query(
        "SELECT kind, cause_key FROM risk.signals \
         WHERE tenant_id = $1 AND resolved_at IS NULL AND kind = ANY($2)",
    )
    .bind::<Text, _>(tenant)
    .bind::<diesel::sql_types::Array<Text>, _>(kinds)
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.kind, r.cause_key)).collect())
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn count(conn: &mut AsyncPgConnection, sql: &str, tenant: &str) -> diesel::QueryResult<i64> {
    Ok(diesel::sql_query(sql)
        .bind::<Text, _>(tenant)
        .get_result::<Count>(conn)
        .await?
        .n)
}

/// Signals raised more than once for a cause that can only happen once (one failure
/// episode per invoice: a paid invoice never fails again; one dispute, one write-off,
/// one cancellation per subscription), and the alerts they caused.
pub async fn duplicates(
    conn: &mut AsyncPgConnection,
    tenant: &str,
) -> diesel::QueryResult<(i64, i64)> {
    const ONCE: &str = "kind IN ('payment_failed', 'invoice_uncollectible', 'dispute_opened', 'subscription_canceled')";
    let signals = count(
        conn,
        &format!(
            "SELECT coalesce(sum(n - 1), 0)::bigint AS n FROM (SELECT count(*) AS n FROM risk.signals \
             WHERE tenant_id = $1 AND {ONCE} GROUP BY kind, cause_key HAVING count(*) > 1) d"
        ),
        tenant,
    )
    .await?;
    let alerts = count(
        conn,
        &format!(
            "SELECT coalesce(sum(n - 1), 0)::bigint AS n FROM (SELECT count(*) AS n FROM risk.alerts a \
             JOIN risk.signals s ON s.id = a.signal_id WHERE a.tenant_id = $1 AND s.{ONCE} \
             GROUP BY s.kind, s.cause_key, a.csm_user_id HAVING count(*) > 1) d"
        ),
        tenant,
    )
    .await?;
    Ok((signals, alerts))
}

/// Messages lost on the way: Stripe events (by id) the sync worker never applied, and
/// facts it published that the risk engine or the matcher never consumed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Lost {
    pub stripe_events: Vec<String>,
    pub facts_risk: i64,
    pub facts_matcher: i64,
    /// Still waiting in an outbox (not lost yet; nothing has converged while > 0).
    pub unpublished: i64,
}

impl Lost {
    pub fn total(&self) -> i64 {
        self.stripe_events.len() as i64 + self.facts_risk + self.facts_matcher
    }
}

#[derive(QueryableByName)]
struct Fact {
    #[diesel(sql_type = Text)]
    routing_key: String,
    #[diesel(sql_type = diesel::sql_types::Bytea)]
    payload: Vec<u8>,
}

/// Published facts the risk engine acts on but never applied. It acts on every billing
/// fact except successful payments (the invoice's own update settles them) and cards
/// that belong to no customer; those it acknowledges without a trace, by design.
async fn unconsumed_by_risk(
    conn: &mut AsyncPgConnection,
    tenant: &str,
) -> diesel::QueryResult<i64> {
    use prost::Message as _;
    let facts: Vec<Fact> = diesel::sql_query(
        "SELECT routing_key, payload FROM billing.outbox o WHERE o.tenant_id = $1 \
         AND o.published_at IS NOT NULL AND o.routing_key <> 'payment.succeeded' \
         AND NOT EXISTS (SELECT 1 FROM risk.inbox r WHERE r.message_id = o.message_id)",
    )
    .bind::<Text, _>(tenant)
    .load(conn)
    .await?;
    Ok(facts
        .iter()
        .filter(|f| {
            f.routing_key != "payment_method.updated"
                || contracts::v1::PaymentMethodUpdated::decode(f.payload.as_slice())
                    .map_or(true, |card| !card.stripe_customer_id.is_empty())
        })
        .count() as i64)
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = Text)]
    message_id: String,
}

pub async fn lost(
    conn: &mut AsyncPgConnection,
    tenant: &str,
    stripe_events: &[String],
) -> diesel::QueryResult<Lost> {
    let applied: HashSet<String> = diesel::sql_query(
        "SELECT message_id FROM billing.inbox WHERE consumer = 'sync-worker.stripe-events'",
    )
    .load::<Id>(conn)
    .await?
    .into_iter()
    .map(|r| r.message_id)
    .collect();
    let facts_risk = unconsumed_by_risk(conn, tenant).await?;
    let facts_matcher = count(
        conn,
        "SELECT count(*) AS n FROM billing.outbox o WHERE o.tenant_id = $1 AND o.published_at IS NOT NULL \
         AND o.routing_key LIKE 'customer.%' \
         AND NOT EXISTS (SELECT 1 FROM matching.inbox m WHERE m.message_id = o.message_id)",
        tenant,
    )
    .await?;
    let unpublished = count(
        conn,
        "SELECT ((SELECT count(*) FROM ingress.events WHERE published_at IS NULL) \
         + (SELECT count(*) FROM billing.outbox WHERE published_at IS NULL AND tenant_id = $1) \
         + (SELECT count(*) FROM matching.outbox WHERE published_at IS NULL) \
         + (SELECT count(*) FROM risk.outbox WHERE published_at IS NULL))::bigint AS n",
        tenant,
    )
    .await?;
    Ok(Lost {
        stripe_events: stripe_events
            .iter()
            .filter(|id| !applied.contains(*id))
            .cloned()
            .collect(),
        facts_risk,
        facts_matcher,
        unpublished,
    })
}
