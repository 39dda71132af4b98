//! Backfill: walk every top-level list of a connected Stripe account into `billing`.
//!
//! Stages run in dependency order (catalog before subscriptions, whose MRR needs prices and
//! coupons). Each page is written in one transaction together with the run's progress
//! (stage + `starting_after` cursor), so a crash or redelivery resumes at the next page,
//! never from zero, and never records a page it did not store.

use std::str::FromStr;

use chrono::Utc;
use diesel::{ExpressionMethods as _, OptionalExtension as _, QueryDsl as _};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use platform::db::PgPool;
use stripe_api::pages::{Page, PAGE_SIZE};
use stripe_api::stripe_billing::invoice::ListInvoice;
use stripe_api::stripe_billing::subscription::{ListSubscription, ListSubscriptionStatus};
use stripe_api::stripe_core::charge::ListCharge;
use stripe_api::stripe_core::customer::ListCustomer;
use stripe_api::stripe_product::coupon::ListCoupon;
use stripe_api::stripe_product::price::ListPrice;
use stripe_api::stripe_product::product::ListProduct;
use stripe_api::{ApiError, StripeApi};
use uuid::Uuid;

use crate::rows::{self, Scope};
use crate::schema::sync_runs;
use crate::store;
use crate::subscriptions;

/// The lists a backfill walks, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Products,
    Prices,
    Coupons,
    Customers,
    Subscriptions,
    Invoices,
    Charges,
    Done,
}

impl Stage {
    pub const ORDER: [Stage; 8] = [
        Stage::Products,
        Stage::Prices,
        Stage::Coupons,
        Stage::Customers,
        Stage::Subscriptions,
        Stage::Invoices,
        Stage::Charges,
        Stage::Done,
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
            Stage::Done => "done",
        }
    }

    pub fn next(self) -> Stage {
        let i = Stage::ORDER.iter().position(|s| *s == self).unwrap_or(0);
        Stage::ORDER.get(i + 1).copied().unwrap_or(Stage::Done)
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

/// Where a run stands (one row of `sync_runs`).
#[derive(Debug, Clone)]
pub struct Progress {
    pub run_id: Uuid,
    pub stage: Stage,
    pub cursor: Option<String>,
    pub objects_done: i64,
}

/// Runs (or resumes) the backfill of one connection to completion.
pub async fn run(
    pool: &PgPool,
    api: &StripeApi,
    scope: &Scope,
    connection_id: Uuid,
) -> Result<Progress, BackfillError> {
    let mut progress = start_or_resume(pool, scope, connection_id).await?;
    tracing::info!(run = %progress.run_id, stage = progress.stage.as_str(), objects = progress.objects_done, "backfill running");
    let outcome = walk(pool, api, scope, &mut progress).await;
    let mut conn = pool
        .get()
        .await
        .map_err(|e| BackfillError::Pool(e.to_string()))?;
    match &outcome {
        Ok(()) => {
            diesel::update(sync_runs::table.find(progress.run_id))
                .set((
                    sync_runs::status.eq("succeeded"),
                    sync_runs::error.eq(None::<String>),
                    sync_runs::requests.eq(requests(api)),
                    sync_runs::finished_at.eq(Some(Utc::now())),
                    sync_runs::updated_at.eq(Utc::now()),
                ))
                .execute(&mut conn)
                .await?;
            tracing::info!(run = %progress.run_id, objects = progress.objects_done, "backfill succeeded");
        }
        Err(error) => {
            // Recorded as failed; the job's redelivery resumes it from the saved cursor.
            diesel::update(sync_runs::table.find(progress.run_id))
                .set((
                    sync_runs::status.eq("failed"),
                    sync_runs::error.eq(Some(error.to_string())),
                    sync_runs::updated_at.eq(Utc::now()),
                ))
                .execute(&mut conn)
                .await?;
            tracing::warn!(run = %progress.run_id, %error, "backfill failed");
        }
    }
    outcome.map(|()| progress)
}

fn requests(api: &StripeApi) -> i64 {
    i64::try_from(api.usage().requests).unwrap_or(i64::MAX)
}

/// Resumes the latest unfinished backfill of the connection, or starts a new one.
async fn start_or_resume(
    pool: &PgPool,
    scope: &Scope,
    connection_id: Uuid,
) -> Result<Progress, BackfillError> {
    let mut conn = pool
        .get()
        .await
        .map_err(|e| BackfillError::Pool(e.to_string()))?;
    let unfinished: Option<(Uuid, String, Option<String>, i64)> = sync_runs::table
        .filter(sync_runs::connection_id.eq(connection_id))
        .filter(sync_runs::kind.eq("backfill"))
        .filter(sync_runs::status.ne("succeeded"))
        .order(sync_runs::started_at.desc())
        .select((
            sync_runs::id,
            sync_runs::stage,
            sync_runs::cursor,
            sync_runs::objects_done,
        ))
        .first(&mut conn)
        .await
        .optional()?;
    if let Some((run_id, stage, cursor, objects_done)) = unfinished {
        diesel::update(sync_runs::table.find(run_id))
            .set((
                sync_runs::status.eq("running"),
                sync_runs::attempts.eq(sync_runs::attempts + 1),
                sync_runs::updated_at.eq(Utc::now()),
            ))
            .execute(&mut conn)
            .await?;
        return Ok(Progress {
            run_id,
            stage: stage.parse().map_err(BackfillError::Data)?,
            cursor,
            objects_done,
        });
    }
    // The previous run's total is the best estimate of this one's (for the ETA).
    let expected: Option<i64> = sync_runs::table
        .filter(sync_runs::connection_id.eq(connection_id))
        .filter(sync_runs::kind.eq("backfill"))
        .filter(sync_runs::status.eq("succeeded"))
        .order(sync_runs::started_at.desc())
        .select(sync_runs::objects_done)
        .first(&mut conn)
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
            sync_runs::stage.eq(Stage::Products.as_str()),
            sync_runs::objects_expected.eq(expected),
        ))
        .execute(&mut conn)
        .await?;
    Ok(Progress {
        run_id,
        stage: Stage::Products,
        cursor: None,
        objects_done: 0,
    })
}

async fn walk(
    pool: &PgPool,
    api: &StripeApi,
    scope: &Scope,
    progress: &mut Progress,
) -> Result<(), BackfillError> {
    while progress.stage != Stage::Done {
        let fetched_at = Utc::now().timestamp();
        let after = progress.cursor.clone();
        let (count, next) = match progress.stage {
            Stage::Products => {
                let mut req = ListProduct::new().limit(PAGE_SIZE);
                if let Some(a) = &after {
                    req = req.starting_after(a.clone());
                }
                let page = api.page("products.list", &req).await?;
                let rows: Vec<_> = page
                    .items
                    .iter()
                    .map(|p| rows::product_row(scope, p, fetched_at))
                    .collect();
                commit_page(pool, progress, &page, |conn| {
                    Box::pin(async move {
                        store::products(conn, &rows).await?;
                        Ok(())
                    })
                })
                .await?
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
                commit_page(pool, progress, &page, |conn| {
                    Box::pin(async move {
                        store::prices(conn, &rows).await?;
                        Ok(())
                    })
                })
                .await?
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
                commit_page(pool, progress, &page, |conn| {
                    Box::pin(async move {
                        store::coupons(conn, &rows).await?;
                        Ok(())
                    })
                })
                .await?
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
                let customers: Vec<_> = page
                    .items
                    .iter()
                    .map(|c| rows::customer_row(scope, c, fetched_at))
                    .collect();
                let cards: Vec<_> = page
                    .items
                    .iter()
                    .filter_map(rows::default_card)
                    .map(|pm| rows::payment_method_row(scope, pm, fetched_at))
                    .collect();
                commit_page(pool, progress, &page, |conn| {
                    Box::pin(async move {
                        store::customers(conn, &customers).await?;
                        store::payment_methods(conn, &cards).await?;
                        Ok(())
                    })
                })
                .await?
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
                let page = api.page("subscriptions.list", &req).await?;
                let scope = scope.clone();
                // Moved into the write (it may only borrow the connection).
                let items = page.items.clone();
                commit_page(pool, progress, &page, |conn| {
                    Box::pin(async move {
                        let catalog = store::catalog(conn, &scope.tenant_id, &scope.account_id)
                            .await
                            .map_err(|e| BackfillError::Data(e.to_string()))?;
                        subscriptions::apply(
                            conn,
                            &scope,
                            &items,
                            &catalog,
                            subscriptions::Source::backfill(fetched_at),
                        )
                        .await?;
                        Ok(())
                    })
                })
                .await?
            }
            Stage::Invoices => {
                let mut req = ListInvoice::new().limit(PAGE_SIZE);
                if let Some(a) = &after {
                    req = req.starting_after(a.clone());
                }
                let page = api.page("invoices.list", &req).await?;
                let rows: Vec<_> = page
                    .items
                    .iter()
                    .filter_map(|i| rows::invoice_rows(scope, i, fetched_at))
                    .collect();
                commit_page(pool, progress, &page, |conn| {
                    Box::pin(async move {
                        store::invoices(conn, &rows).await?;
                        Ok(())
                    })
                })
                .await?
            }
            Stage::Charges => {
                let mut req = ListCharge::new().limit(PAGE_SIZE);
                if let Some(a) = &after {
                    req = req.starting_after(a.clone());
                }
                let page = api.page("charges.list", &req).await?;
                let rows: Vec<_> = page
                    .items
                    .iter()
                    .map(|c| rows::attempt_row(scope, c, fetched_at))
                    .collect();
                commit_page(pool, progress, &page, |conn| {
                    Box::pin(async move {
                        store::attempts(conn, &rows).await?;
                        Ok(())
                    })
                })
                .await?
            }
            Stage::Done => unreachable!("the loop stops at Done"),
        };
        progress.objects_done += count;
        match next {
            Some(cursor) => progress.cursor = Some(cursor),
            None => {
                progress.stage = progress.stage.next();
                progress.cursor = None;
            }
        }
        metrics::counter!("sync_backfill_objects_total").increment(count as u64);
        // Usage is per client; persist the total so far with the next page's progress.
        let mut conn = pool
            .get()
            .await
            .map_err(|e| BackfillError::Pool(e.to_string()))?;
        diesel::update(sync_runs::table.find(progress.run_id))
            .set(sync_runs::requests.eq(requests(api)))
            .execute(&mut conn)
            .await?;
    }
    Ok(())
}

type PageWrite<'c> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), BackfillError>> + Send + 'c>>;

/// Writes one page and advances the run's cursor in the same transaction.
async fn commit_page<T, F>(
    pool: &PgPool,
    progress: &Progress,
    page: &Page<T>,
    write: F,
) -> Result<(i64, Option<String>), BackfillError>
where
    F: for<'c> FnOnce(&'c mut AsyncPgConnection) -> PageWrite<'c> + Send,
{
    let count = page.items.len() as i64;
    let (stage, cursor) = match &page.next_cursor {
        Some(next) => (progress.stage, Some(next.clone())),
        None => (progress.stage.next(), None),
    };
    let run_id = progress.run_id;
    let done = progress.objects_done + count;
    let mut conn = pool
        .get()
        .await
        .map_err(|e| BackfillError::Pool(e.to_string()))?;
    conn.transaction::<_, BackfillError, _>(async move |conn| {
        write(conn).await?;
        diesel::update(sync_runs::table.find(run_id))
            .set((
                sync_runs::stage.eq(stage.as_str()),
                sync_runs::cursor.eq(cursor),
                sync_runs::objects_done.eq(done),
                sync_runs::updated_at.eq(Utc::now()),
            ))
            .execute(conn)
            .await?;
        Ok(())
    })
    .await?;
    Ok((count, page.next_cursor.clone()))
}
