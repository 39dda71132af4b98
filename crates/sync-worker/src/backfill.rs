//! Backfill: walk every top-level list of a connected Stripe account into `billing`.
//!
//! Lists are walked concurrently, one task each, all spending the client's one token
//! bucket: at Stripe's 100 requests/s a 10k-customer account needs ~2,100 pages, so the
//! walk must keep the bucket busy rather than wait on page latency or database writes.
//! A list starts once the lists it [needs](Stage::needs) are stored (subscriptions' MRR is
//! computed from the stored prices and coupons); the others start at once. Within a list a
//! fetcher runs ahead of the writer by up to [`PREFETCH_PAGES`] pages: the next cursor is
//! known as soon as a page arrives, so the next request is in flight while a page is written.
//!
//! Each page is written in one transaction together with its list's cursor
//! (`sync_run_cursors`) and the run's totals (`sync_runs.objects_done`, `requests`), so a
//! crash or redelivery resumes every list at its next page, never from zero, and never
//! records a page it did not store.

use std::collections::BTreeSet;
use std::str::FromStr;
use std::sync::Arc;

use chrono::Utc;
use diesel::{
    ExpressionMethods as _, OptionalExtension as _, PgExpressionMethods as _, QueryDsl as _,
};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use platform::db::{PgPool, PooledConn};
use stripe_api::pages::{Page, PAGE_SIZE};
use stripe_api::stripe_billing::invoice::ListInvoice;
use stripe_api::stripe_billing::subscription::{ListSubscription, ListSubscriptionStatus};
use stripe_api::stripe_core::charge::ListCharge;
use stripe_api::stripe_core::customer::ListCustomer;
use stripe_api::stripe_product::coupon::ListCoupon;
use stripe_api::stripe_product::price::ListPrice;
use stripe_api::stripe_product::product::ListProduct;
use stripe_api::stripe_shared::{Dispute, Subscription};
use stripe_api::{ApiError, StripeApi};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::announce;
use crate::facts;
use crate::mrr_input::Catalog;
use crate::rows::{
    self, AttemptRow, CouponRow, CustomerRow, PaymentMethodRow, PriceRow, ProductRow, Scope,
};
use crate::schema::sync_runs;
use crate::store;
use crate::subscriptions;

/// Pages a list's fetcher may hold beyond the one being written. Two keep the bucket busy
/// while a slow page commits; invoice pages are the largest (~300 KB of JSON each).
pub const PREFETCH_PAGES: usize = 2;

diesel::table! {
    /// One row per list of a backfill run: its `starting_after` cursor and progress
    /// (`migrations/billing/2026-11-26-000100_sync_run_cursors`).
    billing.sync_run_cursors (run_id, list) {
        run_id -> Uuid,
        list -> Text,
        cursor -> Nullable<Text>,
        done -> Bool,
        objects_done -> Int8,
        pages -> Int8,
        updated_at -> Timestamptz,
    }
}

/// The lists a backfill walks (`Done` is a finished run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    Products,
    Prices,
    Coupons,
    Customers,
    Subscriptions,
    Invoices,
    Charges,
    Disputes,
    Done,
}

impl Stage {
    pub const ORDER: [Stage; 9] = [
        Stage::Products,
        Stage::Prices,
        Stage::Coupons,
        Stage::Customers,
        Stage::Subscriptions,
        Stage::Invoices,
        Stage::Charges,
        Stage::Disputes,
        Stage::Done,
    ];

    /// Every list, in dependency order.
    pub const LISTS: [Stage; 8] = [
        Stage::Products,
        Stage::Prices,
        Stage::Coupons,
        Stage::Customers,
        Stage::Subscriptions,
        Stage::Invoices,
        Stage::Charges,
        Stage::Disputes,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Products => "products",
            Stage::Prices => "prices",
            Stage::Coupons => "coupons",
            Stage::Customers => "customers",
            Stage::Subscriptions => "subscriptions",
            Stage::Invoices => "invoices",
            Stage::Charges => "charges",
            Stage::Disputes => "disputes",
            Stage::Done => "done",
        }
    }

    /// The bulk of rows this list writes, if it is ever large.
    fn loads(self) -> Option<store::Loaded> {
        match self {
            Stage::Customers => Some(store::Loaded::Customers),
            Stage::Subscriptions => Some(store::Loaded::Subscriptions),
            Stage::Invoices => Some(store::Loaded::Invoices),
            Stage::Charges => Some(store::Loaded::Attempts),
            _ => None,
        }
    }

    /// Lists that must be completely stored before this one is walked: a subscription's
    /// MRR needs its prices (with tiers) and coupons from the stored catalog.
    pub fn needs(self) -> &'static [Stage] {
        match self {
            Stage::Subscriptions => &[Stage::Prices, Stage::Coupons],
            _ => &[],
        }
    }
}

impl FromStr for Stage {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Stage::ORDER
            .into_iter()
            .find(|stage| stage.as_str() == s)
            .ok_or_else(|| format!("unknown backfill stage {s:?}"))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error(transparent)]
    Stripe(#[from] ApiError),
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
    #[error("database pool: {0}")]
    Pool(String),
    #[error("{0}")]
    Data(String),
}

impl From<crate::disputes::DisputeWriteError> for BackfillError {
    fn from(e: crate::disputes::DisputeWriteError) -> Self {
        match e {
            crate::disputes::DisputeWriteError::Row(e) => BackfillError::Data(e.to_string()),
            crate::disputes::DisputeWriteError::Database(e) => BackfillError::Database(e),
        }
    }
}

impl BackfillError {
    /// Worth another delivery: Stripe or the database were unavailable, not wrong.
    pub fn is_transient(&self) -> bool {
        match self {
            BackfillError::Stripe(e) => e.is_transient(),
            BackfillError::Database(_) | BackfillError::Pool(_) => true,
            BackfillError::Data(_) => false,
        }
    }
}

/// Where one list of a run stands (one row of `sync_run_cursors`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListProgress {
    pub list: Stage,
    /// `starting_after` of the next page; `None` = from the start (or done).
    pub cursor: Option<String>,
    pub done: bool,
    pub objects_done: i64,
    pub pages: i64,
}

/// Where a run stands.
#[derive(Debug, Clone)]
pub struct Progress {
    pub run_id: Uuid,
    /// `Done` once every list is stored, else the first unfinished list in dependency order.
    pub stage: Stage,
    pub lists: Vec<ListProgress>,
    pub objects_done: i64,
    /// Requests spent on the run over all its attempts, retries included.
    pub requests: i64,
}

impl Progress {
    fn from_lists(run_id: Uuid, lists: Vec<ListProgress>, requests: i64) -> Self {
        Progress {
            run_id,
            stage: lists
                .iter()
                .find(|l| !l.done)
                .map_or(Stage::Done, |l| l.list),
            objects_done: lists.iter().map(|l| l.objects_done).sum(),
            lists,
            requests,
        }
    }
}

/// What every list task of one run shares.
struct Run {
    pool: PgPool,
    api: StripeApi,
    scope: Scope,
    run_id: Uuid,
    /// Requests recorded by earlier attempts of this run.
    earlier_requests: i64,
    /// The client's count when this attempt started (a client may serve several runs).
    requests_at_start: u64,
}

impl Run {
    /// Requests this run has spent so far, earlier attempts included.
    fn requests(&self) -> i64 {
        let spent = self
            .api
            .usage()
            .requests
            .saturating_sub(self.requests_at_start);
        self.earlier_requests
            .saturating_add(i64::try_from(spent).unwrap_or(i64::MAX))
    }

    async fn conn(&self) -> Result<PooledConn, BackfillError> {
        self.pool
            .get()
            .await
            .map_err(|e| BackfillError::Pool(e.to_string()))
    }
}

/// Runs (or resumes) the backfill of one connection to completion.
///
/// Dropping the returned future stops every list at its next await point; what was
/// committed stays, and the next call resumes from there.
pub async fn run(
    pool: &PgPool,
    api: &StripeApi,
    scope: &Scope,
    connection_id: Uuid,
) -> Result<Progress, BackfillError> {
    let requests_at_start = api.usage().requests;
    // Its own task, like page commits: dropping `run` must not strand an open transaction.
    let (run_id, earlier_requests, lists) = tokio::spawn({
        let (pool, scope) = (pool.clone(), scope.clone());
        async move { start_or_resume(&pool, &scope, connection_id).await }
    })
    .await
    .map_err(|e| BackfillError::Data(format!("starting the run: {e}")))??;
    let run = Arc::new(Run {
        pool: pool.clone(),
        api: api.clone(),
        scope: scope.clone(),
        run_id,
        earlier_requests,
        requests_at_start,
    });
    let resumed = Progress::from_lists(run_id, lists.clone(), earlier_requests);
    tracing::info!(run = %run_id, stage = resumed.stage.as_str(), objects = resumed.objects_done,
        "backfill running");
    let outcome = walk(&run, lists).await;
    let mut conn = run.conn().await?;
    let requests = run.requests();
    match &outcome {
        Ok(()) => {
            diesel::update(sync_runs::table.find(run_id))
                .set((
                    sync_runs::status.eq("succeeded"),
                    sync_runs::stage.eq(Stage::Done.as_str()),
                    sync_runs::error.eq(None::<String>),
                    sync_runs::requests.eq(requests),
                    sync_runs::finished_at.eq(Some(Utc::now())),
                    sync_runs::updated_at.eq(Utc::now()),
                ))
                .execute(&mut conn)
                .await?;
        }
        Err(error) => {
            // Recorded as failed; the job's redelivery resumes it from the saved cursors.
            diesel::update(sync_runs::table.find(run_id))
                .set((
                    sync_runs::status.eq("failed"),
                    sync_runs::error.eq(Some(error.to_string())),
                    sync_runs::requests.eq(requests),
                    sync_runs::updated_at.eq(Utc::now()),
                ))
                .execute(&mut conn)
                .await?;
            tracing::warn!(run = %run_id, %error, "backfill failed");
        }
    }
    let progress = Progress::from_lists(run_id, load_lists(&mut conn, run_id).await?, requests);
    if outcome.is_ok() {
        tracing::info!(run = %run_id, objects = progress.objects_done, requests, "backfill succeeded");
    }
    outcome.map(|()| progress)
}

/// Resumes the latest unfinished backfill of the connection, or starts a new one; returns
/// the run, the requests its earlier attempts spent and where each list stands.
async fn start_or_resume(
    pool: &PgPool,
    scope: &Scope,
    connection_id: Uuid,
) -> Result<(Uuid, i64, Vec<ListProgress>), BackfillError> {
    let mut conn = pool
        .get()
        .await
        .map_err(|e| BackfillError::Pool(e.to_string()))?;
    let (run_id, requests) = conn
        .transaction::<_, BackfillError, _>(async |conn| {
            let unfinished: Option<(Uuid, i64)> = sync_runs::table
                .filter(sync_runs::connection_id.eq(connection_id))
                .filter(sync_runs::kind.eq("backfill"))
                .filter(sync_runs::status.ne("succeeded"))
                .order(sync_runs::started_at.desc())
                .select((sync_runs::id, sync_runs::requests))
                .first(conn)
                .await
                .optional()?;
            let (run_id, requests) = match unfinished {
                Some((run_id, requests)) => {
                    diesel::update(sync_runs::table.find(run_id))
                        .set((
                            sync_runs::status.eq("running"),
                            sync_runs::attempts.eq(sync_runs::attempts + 1),
                            sync_runs::updated_at.eq(Utc::now()),
                        ))
                        .execute(conn)
                        .await?;
                    (run_id, requests)
                }
                None => {
                    // The previous run's total is the best estimate of this one's (for the ETA).
                    let expected: Option<i64> = sync_runs::table
                        .filter(sync_runs::connection_id.eq(connection_id))
                        .filter(sync_runs::kind.eq("backfill"))
                        .filter(sync_runs::status.eq("succeeded"))
                        .order(sync_runs::started_at.desc())
                        .select(sync_runs::objects_done)
                        .first(conn)
                        .await
                        .optional()?;
                    let run_id = Uuid::now_v7();
                    diesel::insert_into(sync_runs::table)
                        .values((
                            sync_runs::id.eq(run_id),
                            sync_runs::tenant_id.eq(&scope.tenant_id),
                            sync_runs::account_id.eq(&scope.account_id),
                            sync_runs::connection_id.eq(connection_id),
                            sync_runs::kind.eq("backfill"),
                            sync_runs::status.eq("running"),
                            sync_runs::stage.eq(remaining(&Stage::LISTS)),
                            sync_runs::objects_expected.eq(expected),
                        ))
                        .execute(conn)
                        .await?;
                    (run_id, 0)
                }
            };
            // Every list has its row (a run may predate a list being added).
            let rows: Vec<_> = Stage::LISTS
                .iter()
                .map(|l| {
                    (
                        sync_run_cursors::run_id.eq(run_id),
                        sync_run_cursors::list.eq(l.as_str()),
                    )
                })
                .collect();
            diesel::insert_into(sync_run_cursors::table)
                .values(rows)
                .on_conflict_do_nothing()
                .execute(conn)
                .await?;
            Ok((run_id, requests))
        })
        .await?;
    let lists = load_lists(&mut conn, run_id).await?;
    Ok((run_id, requests, lists))
}

async fn load_lists(
    conn: &mut AsyncPgConnection,
    run_id: Uuid,
) -> Result<Vec<ListProgress>, BackfillError> {
    use sync_run_cursors as c;
    let rows: Vec<(String, Option<String>, bool, i64, i64)> = c::table
        .filter(c::run_id.eq(run_id))
        .select((c::list, c::cursor, c::done, c::objects_done, c::pages))
        .load(conn)
        .await?;
    let mut lists = rows
        .into_iter()
        .map(|(list, cursor, done, objects_done, pages)| {
            Ok(ListProgress {
                list: list.parse().map_err(BackfillError::Data)?,
                cursor,
                done,
                objects_done,
                pages,
            })
        })
        .collect::<Result<Vec<_>, BackfillError>>()?;
    lists.sort_by_key(|l| l.list);
    Ok(lists)
}

/// `sync_runs.stage` while running: the lists not yet stored, comma-separated.
fn remaining(lists: &[Stage]) -> String {
    if lists.is_empty() {
        return Stage::Done.as_str().to_owned();
    }
    lists
        .iter()
        .map(|l| l.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Starts every unfinished list whose prerequisites are stored, and the rest as those
/// complete. The first failure stops the other lists, and returns only once their page
/// commits in flight have landed: the run is recorded as failed, and a redelivery may
/// resume it at once, so no commit of this attempt may move a cursor after that. (Dropping
/// this future aborts the tasks instead; a commit in flight then still completes.)
async fn walk(run: &Arc<Run>, lists: Vec<ListProgress>) -> Result<(), BackfillError> {
    let mut stored: BTreeSet<Stage> = lists.iter().filter(|l| l.done).map(|l| l.list).collect();
    let mut waiting: Vec<ListProgress> = lists.into_iter().filter(|l| !l.done).collect();
    let mut running: BTreeSet<Stage> = BTreeSet::new();
    let mut tasks = JoinSet::new();
    let stop = CancellationToken::new();
    let stopped = async |mut tasks: JoinSet<_>, error| {
        stop.cancel();
        while tasks.join_next().await.is_some() {}
        Err(error)
    };
    loop {
        let (ready, blocked): (Vec<_>, Vec<_>) = waiting
            .into_iter()
            .partition(|l| l.list.needs().iter().all(|n| stored.contains(n)));
        waiting = blocked;
        for l in ready {
            tracing::debug!(run = %run.run_id, list = l.list.as_str(), cursor = ?l.cursor, "walking list");
            running.insert(l.list);
            let (run, stop) = (run.clone(), stop.clone());
            tasks.spawn(async move {
                walk_list(run, l.list, l.cursor, stop)
                    .await
                    .map(|()| l.list)
            });
        }
        let finished = match tasks.join_next().await {
            None => break,
            Some(Ok(Ok(list))) => list,
            Some(Ok(Err(error))) => return stopped(tasks, error).await,
            Some(Err(join)) => {
                let error = BackfillError::Data(format!("backfill list task: {join}"));
                return stopped(tasks, error).await;
            }
        };
        running.remove(&finished);
        stored.insert(finished);
        let left: Vec<Stage> = running
            .iter()
            .copied()
            .chain(waiting.iter().map(|l| l.list))
            .collect();
        let mut conn = run.conn().await?;
        diesel::update(sync_runs::table.find(run.run_id))
            .set(sync_runs::stage.eq(remaining(&left)))
            .execute(&mut conn)
            .await?;
        tracing::debug!(run = %run.run_id, list = finished.as_str(), "list stored");
    }
    if let [stuck, ..] = waiting.as_slice() {
        return Err(BackfillError::Data(format!(
            "list {} needs {:?}, which never completed",
            stuck.list.as_str(),
            stuck.list.needs()
        )));
    }
    Ok(())
}

/// One page, mapped to rows outside any transaction (the connection is only held to write).
struct Fetched {
    /// The cursor this page was fetched with: the list's saved cursor must still say so.
    after: Option<String>,
    next: Option<String>,
    count: i64,
    rows: Rows,
}

enum Rows {
    Products(Vec<ProductRow>),
    Prices(Vec<PriceRow>),
    Coupons(Vec<CouponRow>),
    Customers(Vec<CustomerRow>, Vec<PaymentMethodRow>),
    /// Mapped in the write: MRR and change history need what we hold, under lock.
    Subscriptions(Vec<Subscription>, i64),
    Invoices(Vec<rows::InvoiceRows>),
    Charges(Vec<AttemptRow>),
    /// Read with their charge expanded (it names the customer); announced in the write.
    Disputes(Vec<Dispute>, i64),
}

/// Walks one list from `cursor` to its end: a fetcher running ahead of a writer. `stop`
/// ends it between pages (a sibling list failed); a page being committed still commits.
async fn walk_list(
    run: Arc<Run>,
    list: Stage,
    cursor: Option<String>,
    stop: CancellationToken,
) -> Result<(), BackfillError> {
    let (tx, rx) = mpsc::channel::<Fetched>(PREFETCH_PAGES);
    let fetcher = async {
        let tx = tx;
        let mut after = cursor;
        loop {
            let Some(page) = stop
                .run_until_cancelled(fetch(&run, list, after.clone()))
                .await
            else {
                return Ok(());
            };
            let page = page?;
            let next = page.next.clone();
            if tx.send(page).await.is_err() {
                return Ok(()); // the writer stopped; its error is the one to report
            }
            match next {
                Some(cursor) => after = Some(cursor),
                None => return Ok::<(), BackfillError>(()),
            }
        }
    };
    let writer = async {
        let mut rx = rx;
        // The catalog is complete before subscriptions start (`Stage::needs`): read it once.
        let catalog = if list == Stage::Subscriptions {
            let mut conn = run.conn().await?;
            let catalog = store::catalog(&mut conn, &run.scope.tenant_id, &run.scope.account_id)
                .await
                .map_err(|e| BackfillError::Data(e.to_string()))?;
            Some(Arc::new(catalog))
        } else {
            None
        };
        while let Some(Some(page)) = stop.run_until_cancelled(rx.recv()).await {
            // Its own task: a walk stopped mid-commit (a failed sibling list, or the caller
            // dropping `run`) must not leave a pooled connection inside an open transaction
            // that holds the run's row lock. The page commits or rolls back regardless.
            tokio::spawn(commit_page(run.clone(), list, page, catalog.clone()))
                .await
                .map_err(|e| {
                    BackfillError::Data(format!("{} page commit: {e}", list.as_str()))
                })??;
        }
        Ok::<(), BackfillError>(())
    };
    // A fetch failure still lets the writer store the pages already fetched; a write
    // failure drops the receiver, which stops the fetcher at its next page.
    let (fetched, written) = tokio::join!(fetcher, writer);
    written?;
    fetched
}

async fn fetch(run: &Run, list: Stage, after: Option<String>) -> Result<Fetched, BackfillError> {
    let api = &run.api;
    let scope = &run.scope;
    let fetched_at = Utc::now().timestamp();
    fn counted<T, R>(
        after: Option<String>,
        page: Page<T>,
        rows: R,
    ) -> (Option<String>, Option<String>, i64, R) {
        (after, page.next_cursor, page.items.len() as i64, rows)
    }
    let (after, next, count, rows) = match list {
        Stage::Products => {
            let mut req = ListProduct::new().limit(PAGE_SIZE);
            if let Some(a) = &after {
                req = req.starting_after(a.clone());
            }
            let page = api.page("products.list", &req).await?;
            let rows = page
                .items
                .iter()
                .map(|p| rows::product_row(scope, p, fetched_at))
                .collect();
            counted(after, page, Rows::Products(rows))
        }
        Stage::Prices => {
            let mut req = ListPrice::new()
                .limit(PAGE_SIZE)
                .expand(vec!["data.tiers".to_owned()]);
            if let Some(a) = &after {
                req = req.starting_after(a.clone());
            }
            let page = api.page("prices.list", &req).await?;
            let rows = page
                .items
                .iter()
                .map(|p| rows::price_row(scope, p, fetched_at))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| BackfillError::Data(e.to_string()))?;
            counted(after, page, Rows::Prices(rows))
        }
        Stage::Coupons => {
            let mut req = ListCoupon::new().limit(PAGE_SIZE);
            if let Some(a) = &after {
                req = req.starting_after(a.clone());
            }
            let page = api.page("coupons.list", &req).await?;
            let rows = page
                .items
                .iter()
                .map(|c| rows::coupon_row(scope, c, fetched_at))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| BackfillError::Data(e.to_string()))?;
            counted(after, page, Rows::Coupons(rows))
        }
        Stage::Customers => {
            // The default card comes expanded with its customer: expiry without a
            // request per customer.
            let mut req = ListCustomer::new().limit(PAGE_SIZE).expand(vec![
                "data.invoice_settings.default_payment_method".to_owned(),
            ]);
            if let Some(a) = &after {
                req = req.starting_after(a.clone());
            }
            let page = api.page("customers.list", &req).await?;
            let customers = page
                .items
                .iter()
                .map(|c| rows::customer_row(scope, c, fetched_at))
                .collect();
            let cards = page
                .items
                .iter()
                .filter_map(rows::default_card)
                .map(|pm| rows::payment_method_row(scope, pm, fetched_at))
                .collect();
            counted(after, page, Rows::Customers(customers, cards))
        }
        Stage::Subscriptions => {
            let mut req = ListSubscription::new()
                .limit(PAGE_SIZE)
                .status(ListSubscriptionStatus::All)
                .expand(vec![
                    "data.discounts".to_owned(),
                    "data.items.data.discounts".to_owned(),
                ]);
            if let Some(a) = &after {
                req = req.starting_after(a.clone());
            }
            let mut page = api.page("subscriptions.list", &req).await?;
            let items = std::mem::take(&mut page.items);
            let count = items.len() as i64;
            (
                after,
                page.next_cursor,
                count,
                Rows::Subscriptions(items, fetched_at),
            )
        }
        Stage::Invoices => {
            // `payments` (includable) is what links an invoice to its attempts since basil.
            let mut req = ListInvoice::new()
                .limit(PAGE_SIZE)
                .expand(vec!["data.payments".to_owned()]);
            if let Some(a) = &after {
                req = req.starting_after(a.clone());
            }
            let page = api.page("invoices.list", &req).await?;
            let rows = page
                .items
                .iter()
                .filter_map(|i| rows::invoice_rows(scope, i, fetched_at))
                .collect();
            counted(after, page, Rows::Invoices(rows))
        }
        Stage::Charges => {
            let mut req = ListCharge::new().limit(PAGE_SIZE);
            if let Some(a) = &after {
                req = req.starting_after(a.clone());
            }
            let page = api.page("charges.list", &req).await?;
            let rows = page
                .items
                .iter()
                .map(|c| rows::attempt_row(scope, c, fetched_at))
                .collect();
            counted(after, page, Rows::Charges(rows))
        }
        Stage::Disputes => {
            // Not among the typed requests we build (`stripe_core`'s `dispute` feature is
            // off): the same list endpoint, read as JSON into async-stripe's Dispute.
            let mut query = vec![("limit", PAGE_SIZE.to_string())];
            if let Some(a) = &after {
                query.push(("starting_after", a.clone()));
            }
            let page = api
                .get_json(
                    "disputes.list",
                    "/disputes".to_owned(),
                    &["data.charge"],
                    &query,
                )
                .await?;
            let items = page["data"]
                .as_array()
                .ok_or_else(|| BackfillError::Data("/v1/disputes answered no data".into()))?
                .iter()
                .map(|d| {
                    serde_path_to_error::deserialize::<_, Dispute>(d.clone()).map_err(|e| {
                        BackfillError::Data(format!("a dispute does not read as one: {e}"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let next = if page["has_more"] == serde_json::Value::Bool(true) {
                items.last().map(|d| d.id.as_str().to_owned())
            } else {
                None
            };
            let count = items.len() as i64;
            (after, next, count, Rows::Disputes(items, fetched_at))
        }
        Stage::Done => return Err(BackfillError::Data("no list called done".into())),
    };
    Ok(Fetched {
        after,
        next,
        count,
        rows,
    })
}

/// Writes one page, advances its list's cursor and the run's totals in one transaction.
async fn commit_page(
    run: Arc<Run>,
    list: Stage,
    page: Fetched,
    catalog: Option<Arc<Catalog>>,
) -> Result<(), BackfillError> {
    let Fetched {
        after,
        next,
        count,
        rows,
    } = page;
    let mut conn = run.conn().await?;
    let scope = &run.scope;
    let run_id = run.run_id;
    let pages = conn.transaction::<_, BackfillError, _>(async |conn| {
        write_rows(conn, scope, rows, catalog.as_deref()).await?;
        use sync_run_cursors as c;
        // Only from where this page was fetched: a second walker of the same run (a
        // duplicate delivery) cannot move a cursor backwards or count a page twice.
        let pages: Vec<i64> = diesel::update(
            c::table
                .find((run_id, list.as_str()))
                .filter(c::cursor.is_not_distinct_from(&after))
                .filter(c::done.eq(false)),
        )
        .set((
            c::cursor.eq(&next),
            c::done.eq(next.is_none()),
            c::objects_done.eq(c::objects_done + count),
            c::pages.eq(c::pages + 1),
            c::updated_at.eq(Utc::now()),
        ))
        .returning(c::pages)
        .get_results(conn)
        .await?;
        let [pages] = pages[..] else {
            return Err(BackfillError::Data(format!(
                "run {run_id}: the {} cursor moved under this walk (another worker on the same run?)",
                list.as_str()
            )));
        };
        // Last, so the run's row is locked only for the commit (lists share it).
        diesel::update(sync_runs::table.find(run_id))
            .set((
                sync_runs::objects_done.eq(sync_runs::objects_done + count),
                sync_runs::requests.eq(diesel::dsl::sql::<diesel::sql_types::BigInt>(
                    "GREATEST(requests, ",
                )
                .bind::<diesel::sql_types::BigInt, _>(run.requests())
                .sql(")")),
                sync_runs::updated_at.eq(Utc::now()),
            ))
            .execute(conn)
            .await?;
        Ok(pages)
    })
    .await?;
    metrics::counter!("sync_backfill_objects_total", "list" => list.as_str())
        .increment(count as u64);
    // Statistics as the tables grow (after 4, 16, 64, … pages of this list), in the
    // background: the next pages' id-list lookups are planned on them.
    if let Some(loaded) = list.loads().filter(|_| is_power_of_4(pages)) {
        tokio::spawn(async move {
            let analyzed = match run.conn().await {
                Ok(mut conn) => store::analyze(&mut conn, loaded)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            if let Err(error) = analyzed {
                tracing::warn!(?loaded, %error, "ANALYZE during backfill failed");
            }
        });
    }
    Ok(())
}

fn is_power_of_4(n: i64) -> bool {
    n >= 4 && n.count_ones() == 1 && n.trailing_zeros().is_multiple_of(2)
}

async fn write_rows(
    conn: &mut AsyncPgConnection,
    scope: &Scope,
    rows: Rows,
    catalog: Option<&Catalog>,
) -> Result<(), BackfillError> {
    match rows {
        Rows::Products(rows) => {
            store::products(conn, &rows).await?;
        }
        Rows::Prices(rows) => {
            store::prices(conn, &rows).await?;
        }
        Rows::Coupons(rows) => {
            store::coupons(conn, &rows).await?;
        }
        Rows::Customers(customers, cards) => {
            store::customers(conn, &customers).await?;
            store::payment_methods(conn, &cards).await?;
            // The matcher links customers from these facts, so every backfilled customer
            // is announced (consumers treat facts as states: a re-run is harmless).
            let out: Vec<_> = customers
                .iter()
                .map(|row| {
                    facts::customer(row, &subscriptions::Source::backfill(row.source_created))
                })
                .collect();
            facts::enqueue(conn, &out).await?;
        }
        Rows::Subscriptions(items, fetched_at) => {
            let catalog = catalog.ok_or_else(|| {
                BackfillError::Data("subscriptions written without the catalog".into())
            })?;
            // Announces new or changed subscriptions (a re-run with nothing changed, nothing).
            let source = subscriptions::Source::backfill(fetched_at);
            subscriptions::apply(conn, scope, &items, catalog, source).await?;
        }
        Rows::Invoices(rows) => {
            announce::write_invoices(conn, scope, &rows, |i| {
                subscriptions::Source::backfill(i.source_created)
            })
            .await?;
        }
        Rows::Charges(rows) => {
            let held =
                announce::held_outcomes(conn, &scope.tenant_id, &scope.account_id, &rows).await?;
            let written = store::attempts(conn, &rows).await?;
            let now = Utc::now();
            let out: Vec<_> = rows
                .iter()
                .filter(|r| written.contains(&r.charge_id))
                .filter(|r| {
                    announce::attempt_is_news(r, held.get(&r.charge_id).map(String::as_str), now)
                })
                .map(|r| facts::attempt(r, &subscriptions::Source::backfill(r.source_created)))
                .collect();
            facts::enqueue(conn, &out).await?;
        }
        Rows::Disputes(items, fetched_at) => {
            let customers = crate::disputes::known_customers(conn, scope, &items).await?;
            let source = subscriptions::Source::backfill(fetched_at);
            crate::disputes::store(conn, scope, &items, &customers, &source).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_are_refreshed_as_a_list_grows_fourfold() {
        let at: Vec<i64> = (0..=1100).filter(|n| is_power_of_4(*n)).collect();
        assert_eq!(at, [4, 16, 64, 256, 1024]);
    }

    #[test]
    fn every_list_can_start_and_needs_only_earlier_lists() {
        for list in Stage::LISTS {
            assert!(list.needs().iter().all(|n| *n < list && *n != Stage::Done));
        }
        assert_eq!(remaining(&[]), "done");
        assert_eq!(
            remaining(&[Stage::Invoices, Stage::Charges]),
            "invoices,charges"
        );
    }
}
