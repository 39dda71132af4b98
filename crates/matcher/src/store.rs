//! The `matching` schema: accounts, customers, manual decisions, links, pending work.
//! Every write runs inside the caller's transaction, so a message's effects, its inbox
//! record and the re-match work it causes commit together.

use std::collections::{BTreeMap, HashMap};

use diesel::sql_types::{Array, BigInt, Bool, Double, Nullable, Text};
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};

use crate::decide::{KnownCustomer, Manual, Outcome, Status};

type Result<T> = std::result::Result<T, diesel::result::Error>;

/// An account as a message describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountRow {
    pub account_id: String,
    pub name: String,
    pub domains: Vec<String>,
    pub external_ids: Vec<String>,
    pub csm_user_id: Option<String>,
    pub source_updated_ms: i64,
}

#[derive(QueryableByName)]
struct StoredAccount {
    #[diesel(sql_type = Text)]
    account_id: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Array<Text>)]
    domains: Vec<String>,
    #[diesel(sql_type = Array<Text>)]
    external_ids: Vec<String>,
    #[diesel(sql_type = Nullable<Text>)]
    csm_user_id: Option<String>,
    #[diesel(sql_type = BigInt)]
    source_updated_ms: i64,
    #[diesel(sql_type = Bool)]
    deleted: bool,
}

/// Applies an account newer-or-equal to what is held. `true` when what matching sees changed
/// (name, domains, ids, CSM, or it came back from deletion).
pub async fn upsert_account(
    conn: &mut AsyncPgConnection,
    tenant: &str,
    row: &AccountRow,
) -> Result<bool> {
    let old = account(conn, tenant, &row.account_id).await?;
    if let Some(old) = &old {
        if old.source_updated_ms > row.source_updated_ms {
            return Ok(false);
        }
    }
    diesel::sql_query(
        "INSERT INTO matching.accounts (tenant_id, account_id, name, domains, external_ids, csm_user_id, source_updated_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (tenant_id, account_id) DO UPDATE SET name = EXCLUDED.name, domains = EXCLUDED.domains, \
           external_ids = EXCLUDED.external_ids, csm_user_id = EXCLUDED.csm_user_id, \
           source_updated_ms = EXCLUDED.source_updated_ms, deleted_at = NULL, received_at = now() \
         WHERE accounts.source_updated_ms <= EXCLUDED.source_updated_ms",
    )
    .bind::<Text, _>(tenant)
    .bind::<Text, _>(&row.account_id)
    .bind::<Text, _>(&row.name)
    .bind::<Array<Text>, _>(&row.domains)
    .bind::<Array<Text>, _>(&row.external_ids)
    .bind::<Nullable<Text>, _>(row.csm_user_id.as_deref())
    .bind::<BigInt, _>(row.source_updated_ms)
    .execute(conn)
    .await?;
    Ok(match old {
        None => true,
        Some(old) => {
            old.deleted
                || old.name != row.name
                || old.domains != row.domains
                || old.external_ids != row.external_ids
                || old.csm_user_id != row.csm_user_id
        }
    })
}

/// Marks an account deleted (when the deletion is not older than what is held).
pub async fn delete_account(
    conn: &mut AsyncPgConnection,
    tenant: &str,
    account_id: &str,
    deleted_at_ms: i64,
) -> Result<bool> {
    let changed = diesel::sql_query(
        "UPDATE matching.accounts SET deleted_at = to_timestamp($3 / 1000.0), source_updated_ms = $3 \
         WHERE tenant_id = $1 AND account_id = $2 AND deleted_at IS NULL AND source_updated_ms <= $3",
    )
    .bind::<Text, _>(tenant)
    .bind::<Text, _>(account_id)
    .bind::<BigInt, _>(deleted_at_ms)
    .execute(conn)
    .await?;
    Ok(changed == 1)
}

async fn account(
    conn: &mut AsyncPgConnection,
    tenant: &str,
    account_id: &str,
) -> Result<Option<StoredAccount>> {
    let mut rows: Vec<StoredAccount> = diesel::sql_query(
        "SELECT account_id, name, domains, external_ids, csm_user_id, source_updated_ms, deleted_at IS NOT NULL AS deleted \
         FROM matching.accounts WHERE tenant_id = $1 AND account_id = $2 FOR UPDATE",
    )
    .bind::<Text, _>(tenant)
    .bind::<Text, _>(account_id)
    .load(conn)
    .await?;
    Ok(rows.pop())
}

/// Whether the tenant has this live account.
pub async fn account_exists(
    conn: &mut AsyncPgConnection,
    tenant: &str,
    account_id: &str,
) -> Result<bool> {
    Ok(account(conn, tenant, account_id)
        .await?
        .is_some_and(|a| !a.deleted))
}

/// Every live account of the tenant, for its index.
pub async fn live_accounts(conn: &mut AsyncPgConnection, tenant: &str) -> Result<Vec<AccountRow>> {
    let rows: Vec<StoredAccount> = diesel::sql_query(
        "SELECT account_id, name, domains, external_ids, csm_user_id, source_updated_ms, false AS deleted \
         FROM matching.accounts WHERE tenant_id = $1 AND deleted_at IS NULL",
    )
    .bind::<Text, _>(tenant)
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| AccountRow {
            account_id: r.account_id,
            name: r.name,
            domains: r.domains,
            external_ids: r.external_ids,
            csm_user_id: r.csm_user_id,
            source_updated_ms: r.source_updated_ms,
        })
        .collect())
}

/// Invalidates cached indexes of the tenant's accounts.
pub async fn bump_accounts_version(conn: &mut AsyncPgConnection, tenant: &str) -> Result<()> {
    diesel::sql_query(
        "INSERT INTO matching.tenants (tenant_id, accounts_version) VALUES ($1, 1) \
         ON CONFLICT (tenant_id) DO UPDATE SET accounts_version = tenants.accounts_version + 1",
    )
    .bind::<Text, _>(tenant)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(QueryableByName)]
struct Version {
    #[diesel(sql_type = BigInt)]
    accounts_version: i64,
}

pub async fn accounts_version(conn: &mut AsyncPgConnection, tenant: &str) -> Result<i64> {
    let rows: Vec<Version> =
        diesel::sql_query("SELECT accounts_version FROM matching.tenants WHERE tenant_id = $1")
            .bind::<Text, _>(tenant)
            .load(conn)
            .await?;
    Ok(rows.into_iter().next().map_or(0, |v| v.accounts_version))
}

/// Queues a re-match: of one customer, or of every customer of the tenant (`None`).
pub async fn mark_pending(
    conn: &mut AsyncPgConnection,
    tenant: &str,
    stripe_customer_id: Option<&str>,
) -> Result<()> {
    // A customer already pending keeps the trace of the change that queued it first.
    diesel::sql_query(
        "INSERT INTO matching.pending (tenant_id, stripe_customer_id, traceparent) VALUES ($1, $2, $3) \
         ON CONFLICT DO NOTHING",
    )
    .bind::<Text, _>(tenant)
    .bind::<Text, _>(stripe_customer_id.unwrap_or(""))
    .bind::<Nullable<Text>, _>(platform::telemetry::current_traceparent())
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(QueryableByName)]
struct StoredCustomer {
    #[diesel(sql_type = Text)]
    stripe_customer_id: String,
    #[diesel(sql_type = Text)]
    stripe_account_id: String,
    #[diesel(sql_type = Nullable<Text>)]
    email: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    name: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Jsonb)]
    metadata: serde_json::Value,
    #[diesel(sql_type = Bool)]
    deleted: bool,
    #[diesel(sql_type = BigInt)]
    source_occurred_at: i64,
}

impl From<StoredCustomer> for KnownCustomer {
    fn from(c: StoredCustomer) -> Self {
        let metadata = c
            .metadata
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        KnownCustomer {
            stripe_customer_id: c.stripe_customer_id,
            stripe_account_id: c.stripe_account_id,
            email: c.email,
            name: c.name,
            metadata,
            deleted: c.deleted,
        }
    }
}

/// Applies a customer state newer-or-equal to what is held. `true` when what matching sees
/// (email, name, metadata, deletion) changed.
pub async fn upsert_customer(
    conn: &mut AsyncPgConnection,
    tenant: &str,
    customer: &KnownCustomer,
    occurred_at: i64,
) -> Result<bool> {
    let mut old: Vec<StoredCustomer> = diesel::sql_query(
        "SELECT stripe_customer_id, stripe_account_id, email, name, metadata, deleted, source_occurred_at \
         FROM matching.customers WHERE tenant_id = $1 AND stripe_customer_id = $2 FOR UPDATE",
    )
    .bind::<Text, _>(tenant)
    .bind::<Text, _>(&customer.stripe_customer_id)
    .load(conn)
    .await?;
    let old = old.pop();
    if let Some(old) = &old {
        // Deletions are terminal; older states never roll a customer back.
        if old.deleted || old.source_occurred_at > occurred_at {
            return Ok(false);
        }
    }
    let metadata: serde_json::Map<String, serde_json::Value> = customer
        .metadata
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    let applied = diesel::sql_query(
        "INSERT INTO matching.customers (tenant_id, stripe_customer_id, stripe_account_id, email, name, metadata, deleted, source_occurred_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (tenant_id, stripe_customer_id) DO UPDATE SET stripe_account_id = EXCLUDED.stripe_account_id, \
           email = EXCLUDED.email, name = EXCLUDED.name, metadata = EXCLUDED.metadata, deleted = EXCLUDED.deleted, \
           source_occurred_at = EXCLUDED.source_occurred_at, updated_at = now() \
         WHERE NOT customers.deleted AND customers.source_occurred_at <= EXCLUDED.source_occurred_at",
    )
    .bind::<Text, _>(tenant)
    .bind::<Text, _>(&customer.stripe_customer_id)
    .bind::<Text, _>(&customer.stripe_account_id)
    .bind::<Nullable<Text>, _>(customer.email.as_deref())
    .bind::<Nullable<Text>, _>(customer.name.as_deref())
    .bind::<diesel::sql_types::Jsonb, _>(serde_json::Value::Object(metadata))
    .bind::<Bool, _>(customer.deleted)
    .bind::<BigInt, _>(occurred_at)
    .execute(conn)
    .await?;
    Ok(applied == 1
        && match old.map(KnownCustomer::from) {
            None => true,
            Some(old) => old != *customer,
        })
}

/// Rows of `select` (which ends `WHERE tenant_id = $1`) for the listed customers, or for all
/// of the tenant's with `None`.
async fn of_customers<R>(
    conn: &mut AsyncPgConnection,
    select: &str,
    tenant: &str,
    ids: Option<&[String]>,
) -> Result<Vec<R>>
where
    R: QueryableByName<diesel::pg::Pg> + Send + 'static,
{
    diesel::sql_query(format!(
        "{select} AND ($2::text[] IS NULL OR stripe_customer_id = ANY($2))"
    ))
    .bind::<Text, _>(tenant)
    .bind::<Nullable<Array<Text>>, _>(ids)
    .load(conn)
    .await
}

/// The customers to decide: the listed ones, or all of the tenant's (`None`).
pub async fn customers(
    conn: &mut AsyncPgConnection,
    tenant: &str,
    ids: Option<&[String]>,
) -> Result<Vec<KnownCustomer>> {
    let select = "SELECT stripe_customer_id, stripe_account_id, email, name, metadata, deleted, source_occurred_at \
                  FROM matching.customers WHERE tenant_id = $1";
    let rows: Vec<StoredCustomer> = of_customers(conn, select, tenant, ids).await?;
    Ok(rows.into_iter().map(KnownCustomer::from).collect())
}

#[derive(QueryableByName)]
struct StoredManual {
    #[diesel(sql_type = Text)]
    stripe_customer_id: String,
    #[diesel(sql_type = Nullable<Text>)]
    pinned_account_id: Option<String>,
    #[diesel(sql_type = Bool)]
    pinned_none: bool,
    #[diesel(sql_type = Array<Text>)]
    excluded_account_ids: Vec<String>,
    #[diesel(sql_type = Text)]
    decided_by: String,
    #[diesel(sql_type = Nullable<Text>)]
    note: Option<String>,
}

/// Manual decisions of the tenant, by customer (all, or of the listed customers).
pub async fn manual_decisions(
    conn: &mut AsyncPgConnection,
    tenant: &str,
    ids: Option<&[String]>,
) -> Result<HashMap<String, Manual>> {
    let select = "SELECT stripe_customer_id, pinned_account_id, pinned_none, excluded_account_ids, decided_by, note \
                  FROM matching.manual_decisions WHERE tenant_id = $1";
    let rows: Vec<StoredManual> = of_customers(conn, select, tenant, ids).await?;
    Ok(rows
        .into_iter()
        .map(|m| {
            (
                m.stripe_customer_id,
                Manual {
                    pinned_account_id: m.pinned_account_id,
                    pinned_none: m.pinned_none,
                    excluded_account_ids: m.excluded_account_ids,
                    decided_by: m.decided_by,
                    note: m.note,
                },
            )
        })
        .collect())
}

/// One customer's manual decision, locked for update.
pub async fn manual_decision(
    conn: &mut AsyncPgConnection,
    tenant: &str,
    stripe_customer_id: &str,
) -> Result<Option<Manual>> {
    let ids = [stripe_customer_id.to_owned()];
    let _lock = diesel::sql_query(
        "SELECT 1 FROM matching.manual_decisions WHERE tenant_id = $1 AND stripe_customer_id = $2 FOR UPDATE",
    )
    .bind::<Text, _>(tenant)
    .bind::<Text, _>(stripe_customer_id)
    .execute(conn)
    .await?;
    Ok(manual_decisions(conn, tenant, Some(&ids))
        .await?
        .remove(stripe_customer_id))
}

/// Stores (or, with `None`, removes) a customer's manual decision.
pub async fn save_manual_decision(
    conn: &mut AsyncPgConnection,
    tenant: &str,
    stripe_customer_id: &str,
    manual: Option<&Manual>,
) -> Result<()> {
    match manual {
        None => {
            diesel::sql_query(
                "DELETE FROM matching.manual_decisions WHERE tenant_id = $1 AND stripe_customer_id = $2",
            )
            .bind::<Text, _>(tenant)
            .bind::<Text, _>(stripe_customer_id)
            .execute(conn)
            .await?;
        }
        Some(m) => {
            diesel::sql_query(
                "INSERT INTO matching.manual_decisions (tenant_id, stripe_customer_id, pinned_account_id, pinned_none, \
                 excluded_account_ids, decided_by, note) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (tenant_id, stripe_customer_id) DO UPDATE SET pinned_account_id = EXCLUDED.pinned_account_id, \
                 pinned_none = EXCLUDED.pinned_none, excluded_account_ids = EXCLUDED.excluded_account_ids, \
                 decided_by = EXCLUDED.decided_by, note = EXCLUDED.note, decided_at = now()",
            )
            .bind::<Text, _>(tenant)
            .bind::<Text, _>(stripe_customer_id)
            .bind::<Nullable<Text>, _>(m.pinned_account_id.as_deref())
            .bind::<Bool, _>(m.pinned_none)
            .bind::<Array<Text>, _>(&m.excluded_account_ids)
            .bind::<Text, _>(&m.decided_by)
            .bind::<Nullable<Text>, _>(m.note.as_deref())
            .execute(conn)
            .await?;
        }
    }
    Ok(())
}

/// Audit record of one manual request.
pub struct DecisionLogEntry<'a> {
    pub request_id: &'a str,
    pub stripe_customer_id: &'a str,
    pub action: &'a str,
    pub account_id: Option<&'a str>,
    pub actor: &'a str,
    pub note: Option<&'a str>,
    pub outcome: &'a str,
}

pub async fn log_decision(
    conn: &mut AsyncPgConnection,
    tenant: &str,
    entry: &DecisionLogEntry<'_>,
) -> Result<()> {
    diesel::sql_query(
        "INSERT INTO matching.decision_log (tenant_id, request_id, stripe_customer_id, action, account_id, actor, note, outcome) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind::<Text, _>(tenant)
    .bind::<Text, _>(entry.request_id)
    .bind::<Text, _>(entry.stripe_customer_id)
    .bind::<Text, _>(entry.action)
    .bind::<Nullable<Text>, _>(entry.account_id)
    .bind::<Text, _>(entry.actor)
    .bind::<Nullable<Text>, _>(entry.note)
    .bind::<Text, _>(entry.outcome)
    .execute(conn)
    .await?;
    Ok(())
}

/// A stored link and its version.
#[derive(Debug, Clone)]
pub struct StoredLink {
    pub outcome: Outcome,
    pub version: i64,
}

#[derive(QueryableByName)]
struct LinkRow {
    #[diesel(sql_type = Text)]
    stripe_customer_id: String,
    #[diesel(sql_type = Nullable<Text>)]
    account_id: Option<String>,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Nullable<Text>)]
    method: Option<String>,
    #[diesel(sql_type = Double)]
    confidence: f64,
    #[diesel(sql_type = diesel::sql_types::Jsonb)]
    evidence: serde_json::Value,
    #[diesel(sql_type = diesel::sql_types::Jsonb)]
    candidates: serde_json::Value,
    #[diesel(sql_type = Nullable<Text>)]
    reason: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    csm_user_id: Option<String>,
    #[diesel(sql_type = Text)]
    decided_by: String,
    #[diesel(sql_type = BigInt)]
    version: i64,
}

fn method_name(method: Option<&str>) -> Option<&'static str> {
    match method? {
        "metadata_id" => Some("metadata_id"),
        "email_domain" => Some("email_domain"),
        "company_name" => Some("company_name"),
        "manual" => Some("manual"),
        _ => None,
    }
}

/// Current links of the tenant (all, or of the listed customers).
pub async fn links(
    conn: &mut AsyncPgConnection,
    tenant: &str,
    ids: Option<&[String]>,
) -> Result<HashMap<String, StoredLink>> {
    let select = "SELECT stripe_customer_id, account_id, status, method, confidence, evidence, candidates, reason, \
                  csm_user_id, decided_by, version FROM matching.links WHERE tenant_id = $1";
    let rows: Vec<LinkRow> = of_customers(conn, select, tenant, ids).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let outcome = Outcome {
                account_id: r.account_id,
                status: Status::parse(&r.status).unwrap_or(Status::Unmatched),
                method: method_name(r.method.as_deref()),
                confidence: r.confidence,
                evidence: serde_json::from_value(r.evidence).unwrap_or_default(),
                candidates: serde_json::from_value(r.candidates).unwrap_or_default(),
                reason: r.reason,
                csm_user_id: r.csm_user_id,
                decided_by: r.decided_by,
            };
            (
                r.stripe_customer_id,
                StoredLink {
                    outcome,
                    version: r.version,
                },
            )
        })
        .collect())
}

/// A link to write: the customer, its new outcome, the account before, the new version.
pub struct LinkWrite<'a> {
    pub customer: &'a KnownCustomer,
    pub outcome: &'a Outcome,
    pub account_before: Option<&'a str>,
    pub version: i64,
}

/// Upserts links and appends their history: two statements whatever the batch size.
pub async fn write_links(
    conn: &mut AsyncPgConnection,
    tenant: &str,
    writes: &[LinkWrite<'_>],
) -> Result<()> {
    if writes.is_empty() {
        return Ok(());
    }
    let col = |f: &dyn Fn(&LinkWrite) -> String| writes.iter().map(f).collect::<Vec<_>>();
    let opt = |f: &dyn Fn(&LinkWrite) -> Option<String>| writes.iter().map(f).collect::<Vec<_>>();
    let customers = col(&|w| w.customer.stripe_customer_id.clone());
    let stripe_accounts = col(&|w| w.customer.stripe_account_id.clone());
    let accounts = opt(&|w| w.outcome.account_id.clone());
    let statuses = col(&|w| w.outcome.status.as_str().to_owned());
    let methods = opt(&|w| w.outcome.method.map(str::to_owned));
    let confidences: Vec<f64> = writes.iter().map(|w| w.outcome.confidence).collect();
    let evidence = col(&|w| serde_json::to_string(&w.outcome.evidence).unwrap_or_default());
    let candidates = col(&|w| serde_json::to_string(&w.outcome.candidates).unwrap_or_default());
    let reasons = opt(&|w| w.outcome.reason.clone());
    let csms = opt(&|w| w.outcome.csm_user_id.clone());
    let decided_by = col(&|w| w.outcome.decided_by.clone());
    let versions: Vec<i64> = writes.iter().map(|w| w.version).collect();
    let before = opt(&|w| w.account_before.map(str::to_owned));
    diesel::sql_query(
        "INSERT INTO matching.links (tenant_id, stripe_customer_id, stripe_account_id, account_id, status, method, \
           confidence, evidence, candidates, reason, csm_user_id, decided_by, version) \
         SELECT $1, c, sa, a, s, m, conf, e::jsonb, cand::jsonb, r, csm, by, v \
         FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::float8[], $8::text[], \
                     $9::text[], $10::text[], $11::text[], $12::text[], $13::int8[]) \
              AS x(c, sa, a, s, m, conf, e, cand, r, csm, by, v) \
         ON CONFLICT (tenant_id, stripe_customer_id) DO UPDATE SET stripe_account_id = EXCLUDED.stripe_account_id, \
           account_id = EXCLUDED.account_id, status = EXCLUDED.status, method = EXCLUDED.method, \
           confidence = EXCLUDED.confidence, evidence = EXCLUDED.evidence, candidates = EXCLUDED.candidates, \
           reason = EXCLUDED.reason, csm_user_id = EXCLUDED.csm_user_id, decided_by = EXCLUDED.decided_by, \
           decided_at = now(), version = EXCLUDED.version",
    )
    .bind::<Text, _>(tenant)
    .bind::<Array<Text>, _>(&customers)
    .bind::<Array<Text>, _>(&stripe_accounts)
    .bind::<Array<Nullable<Text>>, _>(&accounts)
    .bind::<Array<Text>, _>(&statuses)
    .bind::<Array<Nullable<Text>>, _>(&methods)
    .bind::<Array<Double>, _>(&confidences)
    .bind::<Array<Text>, _>(&evidence)
    .bind::<Array<Text>, _>(&candidates)
    .bind::<Array<Nullable<Text>>, _>(&reasons)
    .bind::<Array<Nullable<Text>>, _>(&csms)
    .bind::<Array<Text>, _>(&decided_by)
    .bind::<Array<BigInt>, _>(&versions)
    .execute(conn)
    .await?;
    diesel::sql_query(
        "INSERT INTO matching.link_history (tenant_id, stripe_customer_id, account_id_before, account_id_after, \
           status, method, confidence, evidence, decided_by, version) \
         SELECT $1, c, b, a, s, m, conf, e::jsonb, by, v \
         FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::float8[], $8::text[], \
                     $9::text[], $10::int8[]) AS x(c, b, a, s, m, conf, e, by, v)",
    )
    .bind::<Text, _>(tenant)
    .bind::<Array<Text>, _>(&customers)
    .bind::<Array<Nullable<Text>>, _>(&before)
    .bind::<Array<Nullable<Text>>, _>(&accounts)
    .bind::<Array<Text>, _>(&statuses)
    .bind::<Array<Nullable<Text>>, _>(&methods)
    .bind::<Array<Double>, _>(&confidences)
    .bind::<Array<Text>, _>(&evidence)
    .bind::<Array<Text>, _>(&decided_by)
    .bind::<Array<BigInt>, _>(&versions)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(QueryableByName)]
struct TenantName {
    #[diesel(sql_type = Text)]
    tenant_id: String,
}

/// Tenants with pending work, oldest request first.
pub async fn pending_tenants(conn: &mut AsyncPgConnection, limit: i64) -> Result<Vec<String>> {
    let rows: Vec<TenantName> = diesel::sql_query(
        "SELECT tenant_id FROM matching.pending GROUP BY tenant_id ORDER BY min(requested_at) LIMIT $1",
    )
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.tenant_id).collect())
}

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

/// Takes the tenant's re-match lock for this transaction, if nobody holds it.
pub async fn try_lock_tenant(conn: &mut AsyncPgConnection, tenant: &str) -> Result<bool> {
    let rows: Vec<Locked> = diesel::sql_query(
        "SELECT pg_try_advisory_xact_lock(hashtextextended('matching.rematch:' || $1, 0)) AS locked",
    )
    .bind::<Text, _>(tenant)
    .load(conn)
    .await?;
    Ok(rows.into_iter().next().is_some_and(|r| r.locked))
}

#[derive(QueryableByName)]
struct PendingId {
    #[diesel(sql_type = Text)]
    stripe_customer_id: String,
    #[diesel(sql_type = Nullable<Text>)]
    traceparent: Option<String>,
}

/// What the re-matcher took from the queue.
#[derive(Debug, PartialEq)]
pub enum Claimed {
    /// Every customer of the tenant.
    All,
    Customers(Vec<String>),
}

/// Claimed work with the trace of the change that queued each customer.
#[derive(Debug, PartialEq)]
pub struct Claim {
    pub claimed: Claimed,
    /// Stripe customer id → `traceparent` of the change that queued it.
    pub traces: HashMap<String, String>,
}

/// Removes up to `limit` pending entries of the tenant (all of them when one asks for the
/// whole tenant) and returns what they ask for.
pub async fn claim_pending(
    conn: &mut AsyncPgConnection,
    tenant: &str,
    limit: i64,
) -> Result<Claim> {
    let rows: Vec<PendingId> = diesel::sql_query(
        "DELETE FROM matching.pending WHERE tenant_id = $1 AND stripe_customer_id IN ( \
           SELECT stripe_customer_id FROM matching.pending WHERE tenant_id = $1 \
           ORDER BY stripe_customer_id = '' DESC, requested_at LIMIT $2) \
         RETURNING stripe_customer_id, traceparent",
    )
    .bind::<Text, _>(tenant)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?;
    let traces = rows
        .iter()
        .filter_map(|r| Some((r.stripe_customer_id.clone(), r.traceparent.clone()?)))
        .collect();
    if rows.iter().any(|r| r.stripe_customer_id.is_empty()) {
        diesel::sql_query("DELETE FROM matching.pending WHERE tenant_id = $1")
            .bind::<Text, _>(tenant)
            .execute(conn)
            .await?;
        return Ok(Claim {
            claimed: Claimed::All,
            traces,
        });
    }
    Ok(Claim {
        claimed: Claimed::Customers(rows.into_iter().map(|r| r.stripe_customer_id).collect()),
        traces,
    })
}

/// Metadata as a sorted map (the facts carry a protobuf map).
pub fn metadata(map: &std::collections::HashMap<String, String>) -> BTreeMap<String, String> {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}
