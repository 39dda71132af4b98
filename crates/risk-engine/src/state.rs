//! What the risk engine keeps of each Stripe customer, newer-only: its link to a CSCX account,
//! its default card, its cards' expiry, its invoices, its subscriptions' MRR and its newest
//! failed charge. The rules are only ever called with the newest state of an object: every
//! upsert here says whether the fact was applied (`false` = older than what is held).

use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Bool, Integer, Nullable, SmallInt, Text, Timestamptz};
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};

type Result<T> = std::result::Result<T, diesel::result::Error>;

/// Serialises everything about one customer (facts of one customer often come in bursts).
pub async fn lock_customer(
    conn: &mut AsyncPgConnection,
    tenant: &str,
    customer: &str,
) -> Result<()> {
    diesel::sql_query(
        "SELECT pg_advisory_xact_lock(hashtextextended('risk.customer:' || $1 || ':' || $2, 0))",
    )
    .bind::<Text, _>(tenant)
    .bind::<Text, _>(customer)
    .execute(conn)
    .await?;
    Ok(())
}

/// Serialises health computations of one account.
pub async fn lock_account(conn: &mut AsyncPgConnection, tenant: &str, account: &str) -> Result<()> {
    diesel::sql_query(
        "SELECT pg_advisory_xact_lock(hashtextextended('risk.account:' || $1 || ':' || $2, 0))",
    )
    .bind::<Text, _>(tenant)
    .bind::<Text, _>(account)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct Link {
    #[diesel(sql_type = Nullable<Text>)]
    pub account_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub csm_user_id: Option<String>,
    #[diesel(sql_type = BigInt)]
    pub version: i64,
}

pub async fn link(
    conn: &mut AsyncPgConnection,
    tenant: &str,
    customer: &str,
) -> Result<Option<Link>> {
    let mut rows: Vec<Link> = diesel::sql_query(
        "SELECT account_id, csm_user_id, version FROM risk.links WHERE tenant_id = $1 AND stripe_customer_id = $2",
    )
    .bind::<Text, _>(tenant)
    .bind::<Text, _>(customer)
    .load(conn)
    .await?;
    Ok(rows.pop())
}

/// Stores a link when its version is newer than the one held.
pub async fn upsert_link(
    conn: &mut AsyncPgConnection,
    tenant: &str,
    customer: &str,
    stripe_account: &str,
    link: &Link,
) -> Result<bool> {
    let n = diesel::sql_query(
        "INSERT INTO risk.links (tenant_id, stripe_customer_id, stripe_account_id, account_id, csm_user_id, version) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, stripe_customer_id) DO UPDATE SET \
         stripe_account_id = EXCLUDED.stripe_account_id, account_id = EXCLUDED.account_id, \
         csm_user_id = EXCLUDED.csm_user_id, version = EXCLUDED.version WHERE links.version < EXCLUDED.version",
    )
    .bind::<Text, _>(tenant)
    .bind::<Text, _>(customer)
    .bind::<Text, _>(stripe_account)
    .bind::<Nullable<Text>, _>(link.account_id.as_deref())
    .bind::<Nullable<Text>, _>(link.csm_user_id.as_deref())
    .bind::<BigInt, _>(link.version)
    .execute(conn)
    .await?;
    Ok(n == 1)
}

#[derive(Debug, Clone, QueryableByName)]
pub struct Customer {
    #[diesel(sql_type = Nullable<Text>)]
    pub default_payment_method: Option<String>,
    #[diesel(sql_type = Bool)]
    pub deleted: bool,
}

pub async fn customer(
    conn: &mut AsyncPgConnection,
    tenant: &str,
    customer: &str,
) -> Result<Option<Customer>> {
    let mut rows: Vec<Customer> = diesel::sql_query(
        "SELECT default_payment_method, deleted FROM risk.customers WHERE tenant_id = $1 AND stripe_customer_id = $2",
    )
    .bind::<Text, _>(tenant)
    .bind::<Text, _>(customer)
    .load(conn)
    .await?;
    Ok(rows.pop())
}

#[allow(clippy::too_many_arguments)]
pub async fn upsert_customer(
    conn: &mut AsyncPgConnection,
    tenant: &str,
    customer: &str,
    stripe_account: &str,
    default_payment_method: Option<&str>,
    delinquent: bool,
    deleted: bool,
    occurred_at: i64,
) -> Result<bool> {
    let n = diesel::sql_query(
        "INSERT INTO risk.customers (tenant_id, stripe_customer_id, stripe_account_id, default_payment_method, delinquent, deleted, source_occurred_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id, stripe_customer_id) DO UPDATE SET \
         stripe_account_id = EXCLUDED.stripe_account_id, default_payment_method = EXCLUDED.default_payment_method, \
         delinquent = EXCLUDED.delinquent, deleted = EXCLUDED.deleted, source_occurred_at = EXCLUDED.source_occurred_at \
         WHERE NOT customers.deleted AND customers.source_occurred_at <= EXCLUDED.source_occurred_at",
    )
    .bind::<Text, _>(tenant)
    .bind::<Text, _>(customer)
    .bind::<Text, _>(stripe_account)
    .bind::<Nullable<Text>, _>(default_payment_method)
    .bind::<Bool, _>(delinquent)
    .bind::<Bool, _>(deleted)
    .bind::<BigInt, _>(occurred_at)
    .execute(conn)
    .await?;
    Ok(n == 1)
}

#[derive(Debug, Clone, QueryableByName)]
pub struct Card {
    #[diesel(sql_type = Text)]
    pub payment_method_id: String,
    #[diesel(sql_type = Text)]
    pub stripe_customer_id: String,
    #[diesel(sql_type = Text)]
    pub brand: String,
    #[diesel(sql_type = Text)]
    pub last4: String,
    #[diesel(sql_type = SmallInt)]
    pub exp_month: i16,
    #[diesel(sql_type = SmallInt)]
    pub exp_year: i16,
    #[diesel(sql_type = Bool)]
    pub detached: bool,
}

pub async fn card(
    conn: &mut AsyncPgConnection,
    tenant: &str,
    payment_method: &str,
) -> Result<Option<Card>> {
    let mut rows: Vec<Card> = diesel::sql_query(
        "SELECT payment_method_id, stripe_customer_id, brand, last4, exp_month, exp_year, detached \
         FROM risk.cards WHERE tenant_id = $1 AND payment_method_id = $2",
    )
    .bind::<Text, _>(tenant)
    .bind::<Text, _>(payment_method)
    .load(conn)
    .await?;
    Ok(rows.pop())
}

pub async fn upsert_card(
    conn: &mut AsyncPgConnection,
    tenant: &str,
    card: &Card,
    occurred_at: i64,
) -> Result<bool> {
    let n = diesel::sql_query(
        "INSERT INTO risk.cards (tenant_id, payment_method_id, stripe_customer_id, brand, last4, exp_month, exp_year, detached, source_occurred_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (tenant_id, payment_method_id) DO UPDATE SET \
         stripe_customer_id = EXCLUDED.stripe_customer_id, brand = EXCLUDED.brand, last4 = EXCLUDED.last4, \
         exp_month = EXCLUDED.exp_month, exp_year = EXCLUDED.exp_year, detached = EXCLUDED.detached, \
         source_occurred_at = EXCLUDED.source_occurred_at \
         WHERE NOT cards.detached AND cards.source_occurred_at <= EXCLUDED.source_occurred_at",
    )
    .bind::<Text, _>(tenant)
    .bind::<Text, _>(&card.payment_method_id)
    .bind::<Text, _>(&card.stripe_customer_id)
    .bind::<Text, _>(&card.brand)
    .bind::<Text, _>(&card.last4)
    .bind::<SmallInt, _>(card.exp_month)
    .bind::<SmallInt, _>(card.exp_year)
    .bind::<Bool, _>(card.detached)
    .bind::<BigInt, _>(occurred_at)
    .execute(conn)
    .await?;
    Ok(n == 1)
}

#[derive(Debug, Clone, QueryableByName)]
pub struct Invoice {
    #[diesel(sql_type = Text)]
    pub stripe_invoice_id: String,
    #[diesel(sql_type = Text)]
    pub stripe_customer_id: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub stripe_subscription_id: Option<String>,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = BigInt)]
    pub amount_due: i64,
    #[diesel(sql_type = BigInt)]
    pub amount_remaining: i64,
    #[diesel(sql_type = Text)]
    pub currency: String,
    #[diesel(sql_type = Integer)]
    pub attempt_count: i32,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub next_payment_attempt: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub due_date: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub paid_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    pub billing_reason: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub first_failed_at: Option<DateTime<Utc>>,
}

const INVOICE_COLUMNS: &str = "stripe_invoice_id, stripe_customer_id, stripe_subscription_id, status, amount_due, \
     amount_remaining, currency, attempt_count, next_payment_attempt, due_date, paid_at, billing_reason, first_failed_at";

/// Stores an invoice state newer-or-equal to the one held; keeps the first failure time.
/// Returns the stored row when applied.
pub async fn upsert_invoice(
    conn: &mut AsyncPgConnection,
    tenant: &str,
    invoice: &Invoice,
    occurred_at: i64,
) -> Result<Option<Invoice>> {
    let mut rows: Vec<Invoice> = diesel::sql_query(format!(
        "INSERT INTO risk.invoices (tenant_id, stripe_invoice_id, stripe_customer_id, stripe_subscription_id, status, \
           amount_due, amount_remaining, currency, attempt_count, next_payment_attempt, due_date, paid_at, billing_reason, \
           first_failed_at, source_occurred_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
         ON CONFLICT (tenant_id, stripe_invoice_id) DO UPDATE SET stripe_customer_id = EXCLUDED.stripe_customer_id, \
           stripe_subscription_id = EXCLUDED.stripe_subscription_id, status = EXCLUDED.status, \
           amount_due = EXCLUDED.amount_due, amount_remaining = EXCLUDED.amount_remaining, currency = EXCLUDED.currency, \
           attempt_count = EXCLUDED.attempt_count, next_payment_attempt = EXCLUDED.next_payment_attempt, \
           due_date = EXCLUDED.due_date, paid_at = EXCLUDED.paid_at, billing_reason = EXCLUDED.billing_reason, \
           first_failed_at = COALESCE(invoices.first_failed_at, EXCLUDED.first_failed_at), \
           source_occurred_at = EXCLUDED.source_occurred_at \
         WHERE invoices.source_occurred_at <= EXCLUDED.source_occurred_at \
         RETURNING {INVOICE_COLUMNS}"
    ))
    .bind::<Text, _>(tenant)
    .bind::<Text, _>(&invoice.stripe_invoice_id)
    .bind::<Text, _>(&invoice.stripe_customer_id)
    .bind::<Nullable<Text>, _>(invoice.stripe_subscription_id.as_deref())
    .bind::<Text, _>(&invoice.status)
    .bind::<BigInt, _>(invoice.amount_due)
    .bind::<BigInt, _>(invoice.amount_remaining)
    .bind::<Text, _>(&invoice.currency)
    .bind::<Integer, _>(invoice.attempt_count)
    .bind::<Nullable<Timestamptz>, _>(invoice.next_payment_attempt)
    .bind::<Nullable<Timestamptz>, _>(invoice.due_date)
    .bind::<Nullable<Timestamptz>, _>(invoice.paid_at)
    .bind::<Nullable<Text>, _>(invoice.billing_reason.as_deref())
    .bind::<Nullable<Timestamptz>, _>(invoice.first_failed_at)
    .bind::<BigInt, _>(occurred_at)
    .load(conn)
    .await?;
    Ok(rows.pop())
}

/// Open invoices of a customer (all customers of the tenant with `None`).
pub async fn open_invoices(
    conn: &mut AsyncPgConnection,
    tenant: &str,
    customer: Option<&str>,
) -> Result<Vec<Invoice>> {
    diesel::sql_query(format!(
        "SELECT {INVOICE_COLUMNS} FROM risk.invoices WHERE tenant_id = $1 AND status = 'open' \
         AND ($2::text IS NULL OR stripe_customer_id = $2) ORDER BY stripe_invoice_id"
    ))
    .bind::<Text, _>(tenant)
    .bind::<Nullable<Text>, _>(customer)
    .load(conn)
    .await
}

#[allow(clippy::too_many_arguments)]
pub async fn upsert_subscription(
    conn: &mut AsyncPgConnection,
    tenant: &str,
    subscription: &str,
    customer: &str,
    status: &str,
    mrr: i64,
    currency: &str,
    cancel_at_period_end: bool,
    occurred_at: i64,
) -> Result<bool> {
    let n = diesel::sql_query(
        "INSERT INTO risk.subscriptions (tenant_id, stripe_subscription_id, stripe_customer_id, status, mrr, currency, cancel_at_period_end, source_occurred_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (tenant_id, stripe_subscription_id) DO UPDATE SET \
         stripe_customer_id = EXCLUDED.stripe_customer_id, status = EXCLUDED.status, mrr = EXCLUDED.mrr, \
         currency = EXCLUDED.currency, cancel_at_period_end = EXCLUDED.cancel_at_period_end, \
         source_occurred_at = EXCLUDED.source_occurred_at WHERE subscriptions.source_occurred_at <= EXCLUDED.source_occurred_at",
    )
    .bind::<Text, _>(tenant)
    .bind::<Text, _>(subscription)
    .bind::<Text, _>(customer)
    .bind::<Text, _>(status)
    .bind::<BigInt, _>(mrr)
    .bind::<Text, _>(currency)
    .bind::<Bool, _>(cancel_at_period_end)
    .bind::<BigInt, _>(occurred_at)
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// A dispute as the rules need it (`risk.disputes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispute {
    pub dispute_id: String,
    pub stripe_customer_id: String,
    pub charge_id: String,
    pub amount: i64,
    pub currency: String,
    pub reason: String,
    pub status: String,
    pub evidence_due_by: Option<DateTime<Utc>>,
}

/// Keeps the dispute's newest state; `false` when the fact is older than what we hold.
pub async fn upsert_dispute(
    conn: &mut AsyncPgConnection,
    tenant: &str,
    dispute: &Dispute,
    occurred_at: i64,
) -> Result<bool> {
    let n = diesel::sql_query(
        "INSERT INTO risk.disputes (tenant_id, dispute_id, stripe_customer_id, charge_id, amount, currency, reason, status, evidence_due_by, source_occurred_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (tenant_id, dispute_id) DO UPDATE SET \
         stripe_customer_id = EXCLUDED.stripe_customer_id, charge_id = EXCLUDED.charge_id, amount = EXCLUDED.amount, \
         currency = EXCLUDED.currency, reason = EXCLUDED.reason, status = EXCLUDED.status, \
         evidence_due_by = EXCLUDED.evidence_due_by, source_occurred_at = EXCLUDED.source_occurred_at \
         WHERE disputes.source_occurred_at <= EXCLUDED.source_occurred_at",
    )
    .bind::<Text, _>(tenant)
    .bind::<Text, _>(&dispute.dispute_id)
    .bind::<Text, _>(&dispute.stripe_customer_id)
    .bind::<Text, _>(&dispute.charge_id)
    .bind::<BigInt, _>(dispute.amount)
    .bind::<Text, _>(&dispute.currency)
    .bind::<Text, _>(&dispute.reason)
    .bind::<Text, _>(&dispute.status)
    .bind::<Nullable<Timestamptz>, _>(dispute.evidence_due_by)
    .bind::<BigInt, _>(occurred_at)
    .execute(conn)
    .await?;
    Ok(n == 1)
}

#[derive(Debug, Clone, QueryableByName)]
pub struct Failure {
    #[diesel(sql_type = Nullable<Text>)]
    pub failure_code: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub failure_message: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    pub attempted_at: DateTime<Utc>,
}

/// Keeps the customer's newest failed charge.
#[allow(clippy::too_many_arguments)]
pub async fn record_failure(
    conn: &mut AsyncPgConnection,
    tenant: &str,
    customer: &str,
    charge: &str,
    code: Option<&str>,
    message: Option<&str>,
    amount: i64,
    currency: &str,
    attempted_at: DateTime<Utc>,
) -> Result<bool> {
    let n = diesel::sql_query(
        "INSERT INTO risk.payment_failures (tenant_id, stripe_customer_id, charge_id, failure_code, failure_message, amount, currency, attempted_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (tenant_id, stripe_customer_id) DO UPDATE SET \
         charge_id = EXCLUDED.charge_id, failure_code = EXCLUDED.failure_code, failure_message = EXCLUDED.failure_message, \
         amount = EXCLUDED.amount, currency = EXCLUDED.currency, attempted_at = EXCLUDED.attempted_at \
         WHERE payment_failures.attempted_at <= EXCLUDED.attempted_at",
    )
    .bind::<Text, _>(tenant)
    .bind::<Text, _>(customer)
    .bind::<Text, _>(charge)
    .bind::<Nullable<Text>, _>(code)
    .bind::<Nullable<Text>, _>(message)
    .bind::<BigInt, _>(amount)
    .bind::<Text, _>(currency)
    .bind::<Timestamptz, _>(attempted_at)
    .execute(conn)
    .await?;
    Ok(n == 1)
}

pub async fn last_failure(
    conn: &mut AsyncPgConnection,
    tenant: &str,
    customer: &str,
) -> Result<Option<Failure>> {
    let mut rows: Vec<Failure> = diesel::sql_query(
        "SELECT failure_code, failure_message, attempted_at FROM risk.payment_failures WHERE tenant_id = $1 AND stripe_customer_id = $2",
    )
    .bind::<Text, _>(tenant)
    .bind::<Text, _>(customer)
    .load(conn)
    .await?;
    Ok(rows.pop())
}

#[derive(QueryableByName)]
struct TenantId {
    #[diesel(sql_type = Text)]
    tenant_id: String,
}

/// Every tenant the engine knows of.
pub async fn tenants(conn: &mut AsyncPgConnection) -> Result<Vec<String>> {
    let rows: Vec<TenantId> = diesel::sql_query(
        "SELECT DISTINCT tenant_id FROM risk.customers UNION SELECT DISTINCT tenant_id FROM risk.signals WHERE resolved_at IS NULL",
    )
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.tenant_id).collect())
}

#[derive(QueryableByName)]
struct ScanTarget {
    #[diesel(sql_type = Text)]
    stripe_customer_id: String,
    #[diesel(sql_type = Text)]
    stripe_account_id: String,
}

/// Customers the daily scan looks at: a default card, an open invoice or an open signal.
pub async fn scan_targets(
    conn: &mut AsyncPgConnection,
    tenant: &str,
) -> Result<Vec<(String, String)>> {
    let rows: Vec<ScanTarget> = diesel::sql_query(
        "SELECT stripe_customer_id, stripe_account_id FROM risk.customers \
           WHERE tenant_id = $1 AND NOT deleted AND default_payment_method IS NOT NULL \
         UNION SELECT i.stripe_customer_id, COALESCE(c.stripe_account_id, '') FROM risk.invoices i \
           LEFT JOIN risk.customers c USING (tenant_id, stripe_customer_id) WHERE i.tenant_id = $1 AND i.status = 'open' \
         UNION SELECT stripe_customer_id, stripe_account_id FROM risk.signals WHERE tenant_id = $1 AND resolved_at IS NULL \
         ORDER BY 1",
    )
    .bind::<Text, _>(tenant)
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.stripe_customer_id, r.stripe_account_id))
        .collect())
}

#[derive(QueryableByName)]
struct AccountId {
    #[diesel(sql_type = Text)]
    account_id: String,
    #[diesel(sql_type = Nullable<Text>)]
    csm_user_id: Option<String>,
}

/// Accounts whose health still moves with time (a resolved signal fading), with their CSM.
pub async fn fading_accounts(
    conn: &mut AsyncPgConnection,
    tenant: &str,
    since: DateTime<Utc>,
) -> Result<Vec<(String, Option<String>)>> {
    let rows: Vec<AccountId> = diesel::sql_query(
        "SELECT DISTINCT s.account_id, \
           (SELECT l.csm_user_id FROM risk.links l WHERE l.tenant_id = s.tenant_id AND l.account_id = s.account_id \
            ORDER BY l.version DESC LIMIT 1) AS csm_user_id \
         FROM risk.signals s WHERE s.tenant_id = $1 AND s.account_id IS NOT NULL AND s.resolved_at > $2",
    )
    .bind::<Text, _>(tenant)
    .bind::<Timestamptz, _>(since)
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.account_id, r.csm_user_id))
        .collect())
}
