//! Reconciliation: repairs what lost webhooks left stale, so a payment problem shows within
//! one period even if its webhook never arrives.
//!
//! 1. Replays Stripe's Events API since the last run's cursor (with an overlap) through the
//!    same path as webhooks: events already applied are skipped by the inbox, the rest are
//!    the lost ones — counted as repaired.
//! 2. Re-lists open invoices and non-final subscriptions (a light re-list, not a backfill)
//!    and re-reads the disputes we hold as open (Stripe's dispute list has no status
//!    filter; open disputes are few), and writes them newer-only, as of the read.

use chrono::Utc;
use diesel::{ExpressionMethods as _, OptionalExtension as _, QueryDsl as _};
use diesel_async::RunQueryDsl as _;
use platform::db::PgPool;
use serde_json::Value;
use stripe_api::stripe_shared::{Dispute, Invoice, Subscription};
use uuid::Uuid;

use crate::announce;
use crate::connections::Connection;
use crate::events::{apply_disputes, apply_event, ApplyError};
use crate::rows;
use crate::schema::sync_runs;
use crate::store;
use crate::subscriptions::{self, Source};

/// Stripe keeps events for 30 days; a first reconciliation looks back this far at most.
const EVENTS_RETENTION_SECS: i64 = 30 * 24 * 3600;
/// Re-read this much before the cursor: events are listed by `created`, and several can
/// share the last second.
const OVERLAP_SECS: i64 = 300;

/// Subscription statuses that can still change by themselves (payment retries, trials).
const NON_FINAL: [&str; 5] = ["active", "past_due", "unpaid", "trialing", "incomplete"];

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Another worker was reconciling this connection: this job was covered by its run
    /// and did nothing (jobs queued faster than runs finish, or two replicas).
    pub coalesced: bool,
    pub events_seen: u64,
    /// Events that had not been applied before: lost or not yet delivered webhooks.
    pub repaired: u64,
    pub objects_relisted: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Stripe(#[from] stripe_api::ApiError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
    #[error("database pool: {0}")]
    Pool(String),
    #[error("{0}")]
    Data(String),
}

impl ReconcileError {
    pub fn is_transient(&self) -> bool {
        match self {
            ReconcileError::Stripe(e) => e.is_transient(),
            ReconcileError::Apply(ApplyError::Transient(_)) => true,
            ReconcileError::Database(_) | ReconcileError::Pool(_) => true,
            _ => false,
        }
    }
}

pub async fn run(pool: &PgPool, connection: &Connection) -> Result<Report, ReconcileError> {
    // One reconciliation per connection at a time, across replicas: a session advisory lock
    // held on its own connection for the whole run. A worker that dies (kill -9, lost node)
    // loses its database session and with it the lock, so its run can be taken over.
    let mut lock = LockConnection(Some(
        pool.get()
            .await
            .map_err(|e| ReconcileError::Pool(e.to_string()))?,
    ));
    if !advisory_lock(lock.conn(), "pg_try_advisory_lock", connection.id).await? {
        tracing::info!(connection = %connection.id, "a reconciliation of this connection is running elsewhere; this job is covered by it");
        lock.release(); // it holds no lock
        return Ok(Report {
            coalesced: true,
            ..Report::default()
        });
    }
    let outcome = run_locked(pool, lock.conn(), connection).await;
    match advisory_lock(lock.conn(), "pg_advisory_unlock", connection.id).await {
        Ok(_) => lock.release(),
        Err(error) => {
            tracing::warn!(%error, connection = %connection.id, "reconcile lock not released; dropping its database connection");
        }
    }
    outcome
}

type Pooled = diesel_async::pooled_connection::deadpool::Object<diesel_async::AsyncPgConnection>;

/// The pooled connection that holds the reconcile lock. Unless released after a clean
/// unlock, it is closed instead of going back to the pool — also when the run is dropped
/// half-way (shutdown) — so no pooled connection ever keeps the lock.
struct LockConnection(Option<Pooled>);

impl LockConnection {
    fn conn(&mut self) -> &mut diesel_async::AsyncPgConnection {
        self.0.as_mut().expect("held until released or dropped")
    }

    /// Back to the pool: the lock was released.
    fn release(mut self) {
        drop(self.0.take());
    }
}

impl Drop for LockConnection {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            drop(Pooled::take(conn));
        }
    }
}

/// `pg_try_advisory_lock` / `pg_advisory_unlock` on the connection's reconcile key.
async fn advisory_lock(
    conn: &mut diesel_async::AsyncPgConnection,
    function: &str,
    connection_id: Uuid,
) -> Result<bool, ReconcileError> {
    #[derive(diesel::QueryableByName)]
    struct Locked {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        done: bool,
    }
    let row: Locked = diesel::sql_query(format!(
        "SELECT {function}(hashtextextended($1, 0)) AS done"
    ))
    .bind::<diesel::sql_types::Text, _>(format!("reconcile:{connection_id}"))
    .get_result(conn)
    .await?;
    Ok(row.done)
}

async fn run_locked(
    pool: &PgPool,
    conn: &mut diesel_async::AsyncPgConnection,
    connection: &Connection,
) -> Result<Report, ReconcileError> {
    let started = Utc::now();
    let run_id = Uuid::now_v7();
    let since = {
        let last: Option<Option<String>> = sync_runs::table
            .filter(sync_runs::connection_id.eq(connection.id))
            .filter(sync_runs::kind.eq("reconcile"))
            .filter(sync_runs::status.eq("succeeded"))
            .order(sync_runs::started_at.desc())
            .select(sync_runs::cursor)
            .first(conn)
            .await
            .optional()?;
        // Holding the lock, a run still marked running was left by a worker that died.
        diesel::update(
            sync_runs::table
                .filter(sync_runs::connection_id.eq(connection.id))
                .filter(sync_runs::kind.eq("reconcile"))
                .filter(sync_runs::status.eq("running")),
        )
        .set((
            sync_runs::status.eq("failed"),
            sync_runs::error.eq(Some("abandoned: the worker running it stopped")),
            sync_runs::updated_at.eq(Utc::now()),
        ))
        .execute(conn)
        .await?;
        diesel::insert_into(sync_runs::table)
            .values((
                sync_runs::id.eq(run_id),
                sync_runs::tenant_id.eq(&connection.scope.tenant_id),
                sync_runs::account_id.eq(&connection.scope.account_id),
                sync_runs::connection_id.eq(connection.id),
                sync_runs::kind.eq("reconcile"),
                sync_runs::status.eq("running"),
                sync_runs::stage.eq("events"),
            ))
            .execute(conn)
            .await?;
        last.flatten()
            .and_then(|c| c.parse::<i64>().ok())
            .map(|c| c - OVERLAP_SECS)
            .unwrap_or(started.timestamp() - EVENTS_RETENTION_SECS)
    };
    let requests_before = connection.api.usage().requests;
    let outcome = reconcile(pool, connection, since).await;
    let requests =
        i64::try_from(connection.api.usage().requests - requests_before).unwrap_or(i64::MAX);
    match &outcome {
        Ok((report, newest)) => {
            diesel::update(sync_runs::table.find(run_id))
                .set((
                    sync_runs::status.eq("succeeded"),
                    sync_runs::stage.eq("done"),
                    // Next run starts from the newest event seen (or from this run's start).
                    sync_runs::cursor.eq(Some(newest.unwrap_or(since + OVERLAP_SECS).to_string())),
                    sync_runs::objects_done
                        .eq(i64::try_from(report.events_seen + report.objects_relisted)
                            .unwrap_or(i64::MAX)),
                    sync_runs::requests.eq(requests),
                    sync_runs::finished_at.eq(Some(Utc::now())),
                    sync_runs::updated_at.eq(Utc::now()),
                ))
                .execute(conn)
                .await?;
            metrics::counter!("sync_reconcile_repaired_total").increment(report.repaired);
            if report.repaired > 0 {
                tracing::warn!(connection = %connection.id, repaired = report.repaired, "reconciliation applied events no webhook had delivered");
            }
        }
        Err(error) => {
            diesel::update(sync_runs::table.find(run_id))
                .set((
                    sync_runs::status.eq("failed"),
                    sync_runs::error.eq(Some(error.to_string())),
                    sync_runs::requests.eq(requests),
                    sync_runs::updated_at.eq(Utc::now()),
                ))
                .execute(conn)
                .await?;
        }
    }
    outcome.map(|(report, _)| report)
}

async fn reconcile(
    pool: &PgPool,
    connection: &Connection,
    since: i64,
) -> Result<(Report, Option<i64>), ReconcileError> {
    let mut report = Report::default();
    // Events arrive newest first; apply them oldest first, as Stripe created them.
    let mut events = list_all(
        connection,
        "events.list",
        "/events",
        &[("created[gte]", since.to_string())],
    )
    .await?;
    events.reverse();
    let newest = events.iter().filter_map(|e| e["created"].as_i64()).max();
    for event in &events {
        report.events_seen += 1;
        match apply_event(pool, connection, event).await? {
            "duplicate" | "ignored" => {}
            _ => report.repaired += 1,
        }
    }

    // The light re-list, as of now.
    let scope = &connection.scope;
    let at = Utc::now().timestamp();
    let source = Source {
        kind: "reconcile",
        event_id: None,
        created: at,
    };
    let open = list_all(
        connection,
        "invoices.list",
        "/invoices",
        &[
            ("status", "open".into()),
            ("expand[]", "data.payments".into()),
        ],
    )
    .await?;
    let mut invoice_rows = Vec::new();
    for json in open {
        let invoice: Invoice = parse(json)?;
        if let Some(rows_) = rows::invoice_rows(scope, &invoice, at) {
            invoice_rows.push(rows_);
        }
    }
    let mut subs = Vec::new();
    for status in NON_FINAL {
        for json in list_all(
            connection,
            "subscriptions.list",
            "/subscriptions",
            &[
                ("status", status.into()),
                ("expand[]", "data.discounts".into()),
                ("expand[]", "data.items.data.discounts".into()),
            ],
        )
        .await?
        {
            subs.push(parse::<Subscription>(json)?);
        }
    }
    let mut conn = pool
        .get()
        .await
        .map_err(|e| ReconcileError::Pool(e.to_string()))?;
    let mut disputes = Vec::new();
    for id in open_disputes(&mut conn, scope).await? {
        match connection
            .api
            .get_object("disputes.retrieve", format!("/disputes/{id}"), &["charge"])
            .await
        {
            Ok(json) => disputes.push(parse::<Dispute>(json)?),
            // Gone at Stripe (test data removed): nothing to read, keep what we hold.
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    report.objects_relisted = (invoice_rows.len() + subs.len() + disputes.len()) as u64;
    let catalog = store::catalog(&mut conn, &scope.tenant_id, &scope.account_id)
        .await
        .map_err(|e| ReconcileError::Data(e.to_string()))?;
    use diesel_async::AsyncConnection as _;
    let changed = conn
        .transaction::<_, ReconcileError, _>(async |conn| {
            // A re-listed invoice that moved without an event reaching us (a retry, a payment).
            let moved =
                announce::write_invoices(conn, scope, &invoice_rows, |_| source.clone()).await?;
            let disputes_changed = apply_disputes(conn, connection, &disputes, &source).await?;
            let changes = subscriptions::apply(conn, scope, &subs, &catalog, source).await?;
            Ok((changes.len() + disputes_changed + moved) as u64)
        })
        .await?;
    // A re-listed subscription whose state moved without an event reaching us.
    report.repaired += changed;
    Ok((report, newest))
}

/// The disputes we hold as still open: their status can move without us hearing of it.
async fn open_disputes(
    conn: &mut diesel_async::AsyncPgConnection,
    scope: &rows::Scope,
) -> Result<Vec<String>, ReconcileError> {
    use crate::schema::disputes as t;
    Ok(t::table
        .filter(t::tenant_id.eq(&scope.tenant_id))
        .filter(t::account_id.eq(&scope.account_id))
        .filter(t::status.eq_any(OPEN_DISPUTE_STATUSES))
        .order(t::dispute_id)
        .select(t::dispute_id)
        .load(conn)
        .await?)
}

/// Dispute statuses that are not final (the `disputes_open` index's).
const OPEN_DISPUTE_STATUSES: [&str; 4] = [
    "warning_needs_response",
    "warning_under_review",
    "needs_response",
    "under_review",
];

fn parse<T: serde::de::DeserializeOwned>(json: Value) -> Result<T, ReconcileError> {
    serde_path_to_error::deserialize(json).map_err(|e| ReconcileError::Data(e.to_string()))
}

/// Every object of a list, walking `starting_after`.
async fn list_all(
    connection: &Connection,
    op: &'static str,
    path: &str,
    params: &[(&str, String)],
) -> Result<Vec<Value>, ReconcileError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut query: Vec<(&str, String)> = params.to_vec();
        query.push(("limit", "100".into()));
        if let Some(a) = &after {
            query.push(("starting_after", a.clone()));
        }
        let page = connection
            .api
            .get_json(op, path.to_owned(), &[], &query)
            .await?;
        let data = page["data"].as_array().cloned().unwrap_or_default();
        after = data
            .last()
            .and_then(|o| o["id"].as_str())
            .map(str::to_owned);
        out.extend(data);
        if page["has_more"] != Value::Bool(true) || after.is_none() {
            return Ok(out);
        }
    }
}
