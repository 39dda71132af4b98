//! Writes mapped rows, a page at a time, newer-only.
//!
//! Every upsert carries `source_created` (when the state was true at Stripe) and only
//! replaces a row holding an older or equal state, so a late or duplicated delivery can
//! never roll an object back. Deleted objects stay deleted. Callers run these inside their
//! transaction so the page and its progress commit together.

use diesel::upsert::excluded;
use diesel::{ExpressionMethods, Insertable, QueryDsl, Queryable};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};

use crate::rows::{
    AttemptRow, CouponRow, CustomerRow, DisputeRow, InvoicePaymentRow, InvoiceRow, InvoiceRows,
    ItemRow, LineRow, PaymentMethodRow, PriceRow, ProductRow, SubscriptionRow,
};
use crate::schema::{
    coupons, disputes, invoice_lines, invoice_payments, payment_attempts, payment_methods, prices,
    products, stripe_customers, stripe_invoices, stripe_subscriptions, subscription_changes,
    subscription_items,
};

type Result<T> = std::result::Result<T, diesel::result::Error>;

/// `ON CONFLICT … DO UPDATE … WHERE`: diesel's upsert `filter` lives in `FilterDsl`, which
/// would clash with `QueryDsl::filter` on ordinary queries if imported here.
macro_rules! only_if {
    ($stmt:expr, $pred:expr) => {
        diesel::query_dsl::methods::FilterDsl::filter($stmt, $pred)
    };
}

/// `col = EXCLUDED.col` for each column: the new row's values on conflict.
macro_rules! take_new {
    ($table:ident: $($col:ident),+ $(,)?) => {
        ($($table::$col.eq(excluded($table::$col)),)+)
    };
}

pub async fn customers(conn: &mut AsyncPgConnection, rows: &[CustomerRow]) -> Result<usize> {
    if rows.is_empty() {
        return Ok(0);
    }
    use stripe_customers as t;
    only_if!(
        only_if!(diesel::insert_into(t::table)
        .values(rows)
        .on_conflict((t::tenant_id, t::account_id, t::stripe_customer_id))
        .do_update()
        .set((
            take_new!(t: email, name, currency, delinquent, metadata, default_payment_method,
                created_at, source_created),
            t::synced_at.eq(diesel::dsl::now),
        )), t::source_created.le(excluded(t::source_created))),
        t::deleted_at.is_null()
    )
    .execute(conn)
    .await
}

pub async fn payment_methods(
    conn: &mut AsyncPgConnection,
    rows: &[PaymentMethodRow],
) -> Result<usize> {
    if rows.is_empty() {
        return Ok(0);
    }
    use payment_methods as t;
    only_if!(
        diesel::insert_into(t::table)
            .values(rows)
            .on_conflict((t::tenant_id, t::account_id, t::payment_method_id))
            .do_update()
            .set(
                take_new!(t: stripe_customer_id, kind, card_brand, card_last4, exp_month, exp_year,
            source_created)
            ),
        t::source_created.le(excluded(t::source_created))
    )
    .execute(conn)
    .await
}

pub async fn products(conn: &mut AsyncPgConnection, rows: &[ProductRow]) -> Result<usize> {
    if rows.is_empty() {
        return Ok(0);
    }
    use products as t;
    only_if!(
        diesel::insert_into(t::table)
            .values(rows)
            .on_conflict((t::tenant_id, t::account_id, t::product_id))
            .do_update()
            .set(take_new!(t: name, active, source_created)),
        t::source_created.le(excluded(t::source_created))
    )
    .execute(conn)
    .await
}

pub async fn prices(conn: &mut AsyncPgConnection, rows: &[PriceRow]) -> Result<usize> {
    if rows.is_empty() {
        return Ok(0);
    }
    use prices as t;
    only_if!(
        diesel::insert_into(t::table)
            .values(rows)
            .on_conflict((t::tenant_id, t::account_id, t::price_id))
            .do_update()
            .set(take_new!(t: product_id, object, source_created)),
        t::source_created.le(excluded(t::source_created))
    )
    .execute(conn)
    .await
}

pub async fn coupons(conn: &mut AsyncPgConnection, rows: &[CouponRow]) -> Result<usize> {
    if rows.is_empty() {
        return Ok(0);
    }
    use coupons as t;
    only_if!(
        diesel::insert_into(t::table)
            .values(rows)
            .on_conflict((t::tenant_id, t::account_id, t::coupon_id))
            .do_update()
            .set(take_new!(t: object, source_created)),
        t::source_created.le(excluded(t::source_created))
    )
    .execute(conn)
    .await
}

/// The account's prices and coupons, for MRR (prices carry the tiers items lack).
pub async fn catalog(
    conn: &mut AsyncPgConnection,
    tenant: &str,
    account: &str,
) -> std::result::Result<crate::mrr_input::Catalog, anyhow::Error> {
    let price_objects: Vec<serde_json::Value> = prices::table
        .filter(prices::tenant_id.eq(tenant))
        .filter(prices::account_id.eq(account))
        .select(prices::object)
        .load(conn)
        .await?;
    let coupon_objects: Vec<serde_json::Value> = coupons::table
        .filter(coupons::tenant_id.eq(tenant))
        .filter(coupons::account_id.eq(account))
        .select(coupons::object)
        .load(conn)
        .await?;
    let prices = price_objects
        .into_iter()
        .map(serde_json::from_value)
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let coupons = coupon_objects
        .into_iter()
        .map(serde_json::from_value)
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(crate::mrr_input::Catalog::new(prices, coupons))
}

/// What we held of a subscription before this write, for its change history.
#[derive(Debug, Clone, Queryable)]
pub struct HeldSubscription {
    pub stripe_subscription_id: String,
    pub status: String,
    pub plan_name: Option<String>,
    pub mrr_cents: i64,
    pub currency: String,
    pub quantity: Option<i64>,
    pub cancel_at_period_end: bool,
    pub source_created: i64,
    pub deleted: bool,
}

/// A subscription with its items and the change to record, ready to write.
#[derive(Debug, Clone)]
pub struct SubscriptionWrite {
    pub row: SubscriptionRow,
    pub items: Vec<ItemRow>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = subscription_changes)]
pub struct ChangeRow {
    pub tenant_id: String,
    pub account_id: String,
    pub stripe_subscription_id: String,
    pub stripe_customer_id: String,
    pub changed_at: chrono::DateTime<chrono::Utc>,
    pub source: String,
    pub event_id: Option<String>,
    pub movement: String,
    pub status_before: Option<String>,
    pub status_after: String,
    pub plan_before: Option<String>,
    pub plan_after: Option<String>,
    pub quantity_before: Option<i64>,
    pub quantity_after: Option<i64>,
    pub mrr_before_cents: i64,
    pub mrr_after_cents: i64,
    pub currency: String,
}

/// Locks and reads what we hold for these subscriptions (same tenant and account).
pub async fn held_subscriptions(
    conn: &mut AsyncPgConnection,
    tenant: &str,
    account: &str,
    ids: &[String],
) -> Result<Vec<HeldSubscription>> {
    use stripe_subscriptions as t;
    t::table
        .filter(t::tenant_id.eq(tenant))
        .filter(t::account_id.eq(account))
        .filter(t::stripe_subscription_id.eq_any(ids))
        .select((
            t::stripe_subscription_id,
            t::status,
            t::plan_name,
            t::mrr_cents,
            t::currency,
            t::quantity,
            t::cancel_at_period_end,
            t::source_created,
            t::deleted_at.is_not_null(),
        ))
        .for_update()
        .load(conn)
        .await
}

/// Whether this subscription ever churned (for "reactivation" vs "new").
pub async fn ever_churned(
    conn: &mut AsyncPgConnection,
    tenant: &str,
    account: &str,
    subscription: &str,
) -> Result<bool> {
    use subscription_changes as t;
    diesel::select(diesel::dsl::exists(
        t::table
            .filter(t::tenant_id.eq(tenant))
            .filter(t::account_id.eq(account))
            .filter(t::stripe_subscription_id.eq(subscription))
            .filter(t::movement.eq("churn")),
    ))
    .get_result(conn)
    .await
}

/// Upserts subscriptions (already filtered to newer ones by the caller, under lock),
/// replaces their items and appends the change rows.
pub async fn write_subscriptions(
    conn: &mut AsyncPgConnection,
    writes: &[SubscriptionWrite],
    changes: &[ChangeRow],
) -> Result<()> {
    if writes.is_empty() {
        return Ok(());
    }
    use stripe_subscriptions as t;
    let rows: Vec<&SubscriptionRow> = writes.iter().map(|w| &w.row).collect();
    only_if!(
        only_if!(diesel::insert_into(t::table)
        .values(rows)
        .on_conflict((t::tenant_id, t::account_id, t::stripe_subscription_id))
        .do_update()
        .set((
            take_new!(t: stripe_customer_id, status, plan_name, mrr_cents, currency, mrr_error,
                quantity, current_period_start, current_period_end, cancel_at_period_end,
                cancel_at, canceled_at, ended_at, trial_end, pause_collection,
                default_payment_method, latest_invoice, created_at, source_created),
            t::updated_at.eq(diesel::dsl::now),
        )), t::source_created.le(excluded(t::source_created))),
        t::deleted_at.is_null()
    )
    .execute(conn)
    .await?;

    let first = &writes[0].row;
    let ids: Vec<&str> = writes
        .iter()
        .map(|w| w.row.stripe_subscription_id.as_str())
        .collect();
    diesel::delete(
        subscription_items::table
            .filter(subscription_items::tenant_id.eq(&first.tenant_id))
            .filter(subscription_items::account_id.eq(&first.account_id))
            .filter(subscription_items::stripe_subscription_id.eq_any(&ids)),
    )
    .execute(conn)
    .await?;
    let items: Vec<&ItemRow> = writes.iter().flat_map(|w| w.items.iter()).collect();
    if !items.is_empty() {
        diesel::insert_into(subscription_items::table)
            .values(items)
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
    }
    if !changes.is_empty() {
        diesel::insert_into(subscription_changes::table)
            .values(changes)
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// Upserts invoices newer-only, replaces the lines of those that were written, stores the
/// payments of those that carried them and links those payments' attempts to the invoice.
/// Writes invoices with their lines and payments; returns the ids of the invoices written
/// (not those we already held in a newer state).
pub async fn invoices(conn: &mut AsyncPgConnection, rows: &[InvoiceRows]) -> Result<Vec<String>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    use stripe_invoices as t;
    let (tenant, account) = (&rows[0].invoice.tenant_id, &rows[0].invoice.account_id);
    let invoice_rows: Vec<&InvoiceRow> = rows.iter().map(|r| &r.invoice).collect();
    let written: Vec<String> =
        only_if!(
            only_if!(diesel::insert_into(t::table)
        .values(invoice_rows)
        .on_conflict((t::tenant_id, t::account_id, t::stripe_invoice_id))
        .do_update()
        .set((
            take_new!(t: stripe_customer_id, stripe_subscription_id, number, amount_cents,
                amount_paid, amount_remaining, total, currency, status, billing_reason,
                collection_method, due_date, paid_at, attempt_count, next_payment_attempt,
                period_start, period_end, hosted_invoice_url, created_at, source_created),
            t::synced_at.eq(diesel::dsl::now),
        )), t::source_created.le(excluded(t::source_created))),
            t::deleted_at.is_null()
        )
        .returning(t::stripe_invoice_id)
        .get_results(conn)
        .await?;
    if written.is_empty() {
        return Ok(written);
    }
    diesel::delete(
        invoice_lines::table
            .filter(invoice_lines::tenant_id.eq(tenant))
            .filter(invoice_lines::account_id.eq(account))
            .filter(invoice_lines::stripe_invoice_id.eq_any(&written)),
    )
    .execute(conn)
    .await?;
    let kept = || {
        rows.iter()
            .filter(|r| written.contains(&r.invoice.stripe_invoice_id))
    };
    let lines: Vec<&LineRow> = kept().flat_map(|r| r.lines.iter()).collect();
    for chunk in lines.chunks(1000) {
        diesel::insert_into(invoice_lines::table)
            .values(chunk.to_vec())
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
    }
    let payments: Vec<&InvoicePaymentRow> = kept()
        .filter_map(|r| r.payments.as_ref())
        .flatten()
        .collect();
    if !payments.is_empty() {
        use invoice_payments as p;
        for chunk in payments.chunks(1000) {
            only_if!(
                diesel::insert_into(p::table)
                    .values(chunk.to_vec())
                    .on_conflict((p::tenant_id, p::account_id, p::invoice_payment_id))
                    .do_update()
                    .set(
                        take_new!(p: stripe_invoice_id, payment_intent_id, charge_id, status,
                        source_created)
                    ),
                p::source_created.le(excluded(p::source_created))
            )
            .execute(conn)
            .await?;
        }
        // Only the linking waits for the attempts' writers (see `lock_links`).
        lock_links(conn, tenant, account).await?;
        let linked: Vec<&str> = payments
            .iter()
            .map(|p| p.stripe_invoice_id.as_str())
            .collect();
        link_attempts(
            conn,
            "ip.tenant_id = $1 AND ip.account_id = $2 AND ip.stripe_invoice_id = ANY($3)",
            tenant,
            account,
            &linked,
        )
        .await?;
    }
    Ok(written)
}

/// Serialises the linking of attempts to invoice payments within one Stripe account until
/// the transaction ends. Invoices and charges are written by concurrent transactions
/// (backfill walks lists in parallel, events race), and whichever links second must see the
/// other's committed rows (each statement of READ COMMITTED takes a new snapshot). A writer
/// of attempts takes it before writing any (it holds row locks on attempts from then on); a
/// writer of invoices takes it only after its invoices, lines and payments, just before
/// linking, so the two big backfill lists write in parallel and wait for each other only
/// there. No deadlock: an invoice writer holds no attempt row locks while it waits, and an
/// attempts writer never waits on an invoice writer's rows.
async fn lock_links(conn: &mut AsyncPgConnection, tenant: &str, account: &str) -> Result<()> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind::<diesel::sql_types::Text, _>(format!("invoice-links/{tenant}/{account}"))
        .execute(conn)
        .await?;
    Ok(())
}

/// An attempt (`a`) belongs to an invoice payment (`ip`): same account, and the payment is
/// the attempt's PaymentIntent, or the attempt's charge itself (paid out of band; applied
/// second, so it wins). One statement per kind of link, each joined on one indexed column:
/// an `OR` of the two cannot use an index and scanned every payment of the account per
/// attempt, which made a backfill quadratic and each charge webhook cost milliseconds.
const LINKS: [&str; 2] = [
    "ip.payment_intent_id = a.payment_intent_id",
    "ip.charge_id = a.charge_id",
];

/// Fills `stripe_invoice_id` of the attempts `filter` selects (binds `$1` tenant, `$2`
/// account, `$3` ids) from their invoice payments.
async fn link_attempts(
    conn: &mut AsyncPgConnection,
    filter: &str,
    tenant: &str,
    account: &str,
    ids: &[&str],
) -> Result<()> {
    for link in LINKS {
        diesel::sql_query(format!(
            "UPDATE billing.payment_attempts a SET stripe_invoice_id = ip.stripe_invoice_id \
             FROM billing.invoice_payments ip \
             WHERE {filter} AND a.tenant_id = ip.tenant_id AND a.account_id = ip.account_id \
               AND {link} AND a.stripe_invoice_id IS DISTINCT FROM ip.stripe_invoice_id"
        ))
        .bind::<diesel::sql_types::Text, _>(tenant)
        .bind::<diesel::sql_types::Text, _>(account)
        .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(ids)
        .execute(conn)
        .await?;
    }
    Ok(())
}

/// Upserts payment attempts newer-only, then renumbers the attempts of the payment
/// intents they belong to (1 = first try), since charges arrive in any order.
/// Writes payment attempts newer-only; returns the charge ids written.
pub async fn attempts(conn: &mut AsyncPgConnection, rows: &[AttemptRow]) -> Result<Vec<String>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    use payment_attempts as t;
    lock_links(conn, &rows[0].tenant_id, &rows[0].account_id).await?;
    let written: Vec<String> = only_if!(
        diesel::insert_into(t::table)
            .values(rows)
            .on_conflict((t::tenant_id, t::account_id, t::charge_id))
            .do_update()
            .set(
                take_new!(t: stripe_customer_id, payment_intent_id, attempted_at, amount, currency,
            outcome, failure_code, failure_message, source_created)
            ),
        t::source_created.le(excluded(t::source_created))
    )
    .returning(t::charge_id)
    .get_results(conn)
    .await?;
    // Their invoice, when its payments are already known (else `invoices` links them later).
    let charges: Vec<&str> = rows.iter().map(|r| r.charge_id.as_str()).collect();
    link_attempts(
        conn,
        "a.tenant_id = $1 AND a.account_id = $2 AND a.charge_id = ANY($3)",
        &rows[0].tenant_id,
        &rows[0].account_id,
        &charges,
    )
    .await?;
    let intents: Vec<&str> = rows
        .iter()
        .filter_map(|r| r.payment_intent_id.as_deref())
        .collect();
    if !intents.is_empty() {
        diesel::sql_query(
            "UPDATE billing.payment_attempts a SET attempt_number = n.rn \
             FROM (SELECT charge_id, row_number() OVER (PARTITION BY payment_intent_id \
                   ORDER BY attempted_at, charge_id) AS rn \
                   FROM billing.payment_attempts \
                   WHERE tenant_id = $1 AND account_id = $2 AND payment_intent_id = ANY($3)) n \
             WHERE a.tenant_id = $1 AND a.account_id = $2 AND a.payment_intent_id = ANY($3) \
               AND a.charge_id = n.charge_id AND a.attempt_number IS DISTINCT FROM n.rn",
        )
        .bind::<diesel::sql_types::Text, _>(&rows[0].tenant_id)
        .bind::<diesel::sql_types::Text, _>(&rows[0].account_id)
        .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(intents)
        .execute(conn)
        .await?;
    }
    Ok(written)
}

/// Writes disputes newer-only and returns the ones whose state changed (a new dispute, or a
/// status, amount, reason, deadline or customer that differs from what we held): the
/// states to announce. A customer we knew is kept when a later read cannot name it.
pub async fn disputes(
    conn: &mut AsyncPgConnection,
    rows: &[DisputeRow],
) -> Result<Vec<DisputeRow>> {
    use diesel::SelectableHelper as _;
    use disputes as t;
    let Some(first) = rows.first() else {
        return Ok(Vec::new());
    };
    let ids: Vec<&str> = rows.iter().map(|r| r.dispute_id.as_str()).collect();
    let held: std::collections::HashMap<String, DisputeRow> = t::table
        .filter(t::tenant_id.eq(&first.tenant_id))
        .filter(t::account_id.eq(&first.account_id))
        .filter(t::dispute_id.eq_any(&ids))
        .select(DisputeRow::as_select())
        .load(conn)
        .await?
        .into_iter()
        .map(|r| (r.dispute_id.clone(), r))
        .collect();
    let rows: Vec<DisputeRow> = rows
        .iter()
        .map(|r| {
            let mut r = r.clone();
            if r.stripe_customer_id.is_none() {
                r.stripe_customer_id = held
                    .get(&r.dispute_id)
                    .and_then(|h| h.stripe_customer_id.clone());
            }
            r
        })
        .collect();
    let written: std::collections::HashSet<String> = only_if!(
        diesel::insert_into(t::table)
            .values(&rows)
            .on_conflict((t::tenant_id, t::account_id, t::dispute_id))
            .do_update()
            .set((
                take_new!(t: charge_id, payment_intent_id, stripe_customer_id, amount, currency,
                    reason, status, evidence_due_by, created_at, source_created),
                t::synced_at.eq(diesel::dsl::now),
            )),
        t::source_created.le(excluded(t::source_created))
    )
    .returning(t::dispute_id)
    .get_results::<String>(conn)
    .await?
    .into_iter()
    .collect();
    Ok(rows
        .into_iter()
        .filter(|r| written.contains(&r.dispute_id) && r.changes(held.get(&r.dispute_id)))
        .collect())
}

/// The customers of charges we hold (`payment_attempts`), by charge id.
pub async fn charge_customers(
    conn: &mut AsyncPgConnection,
    tenant_id: &str,
    account_id: &str,
    charges: &[&str],
) -> Result<std::collections::HashMap<String, String>> {
    use payment_attempts as t;
    if charges.is_empty() {
        return Ok(Default::default());
    }
    let found: Vec<(String, Option<String>)> = t::table
        .filter(t::tenant_id.eq(tenant_id))
        .filter(t::account_id.eq(account_id))
        .filter(t::charge_id.eq_any(charges))
        .select((t::charge_id, t::stripe_customer_id))
        .load(conn)
        .await?;
    Ok(found
        .into_iter()
        .filter_map(|(charge, customer)| Some((charge, customer?)))
        .collect())
}

/// Tables a bulk load writes, for [`analyze`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loaded {
    Customers,
    Subscriptions,
    Invoices,
    Attempts,
}

impl Loaded {
    fn tables(self) -> &'static str {
        match self {
            Loaded::Customers => "billing.stripe_customers, billing.payment_methods",
            Loaded::Subscriptions => {
                "billing.stripe_subscriptions, billing.subscription_items, billing.subscription_changes"
            }
            Loaded::Invoices => {
                "billing.stripe_invoices, billing.invoice_lines, billing.invoice_payments"
            }
            Loaded::Attempts => "billing.payment_attempts",
        }
    }
}

/// Refreshes the planner's statistics of tables a backfill is filling. Without them a
/// table that grew from nothing within minutes looks nearly empty to the planner (and a
/// new tenant's rows look like a handful), which turns the per-page lookups by id list
/// (`= ANY(...)`) into nested loops over everything stored so far: quadratic in the size
/// of the account. `SKIP_LOCKED`: never wait for autovacuum or another backfill's ANALYZE.
pub async fn analyze(conn: &mut AsyncPgConnection, loaded: Loaded) -> Result<()> {
    diesel::sql_query(format!("ANALYZE (SKIP_LOCKED) {}", loaded.tables()))
        .execute(conn)
        .await?;
    Ok(())
}
