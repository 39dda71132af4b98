//! The daily scan (FR-5 "card expiring"): every customer with a default card, an open invoice
//! or an open signal is looked at again with today's date, one short transaction per
//! customer, so cards cross their 30-day line, late invoices grow more severe and one-off
//! signals age out even when no fact arrives. Replicas take turns under an advisory lock.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::sql_types::Bool;
use diesel_async::{AsyncConnection as _, RunQueryDsl as _};
use platform::db::PgPool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::engine::{Engine, EngineError, FactOrigin};
use crate::{events, state};

/// What one scan did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ScanReport {
    pub customers: usize,
    pub events: usize,
}

/// Scans every tenant as of `now`.
pub async fn scan(
    pool: &PgPool,
    engine: &Engine,
    now: DateTime<Utc>,
) -> anyhow::Result<ScanReport> {
    let mut report = ScanReport::default();
    let tenants = {
        let mut conn = pool.get().await?;
        state::tenants(&mut conn).await?
    };
    for tenant in tenants {
        let targets = {
            let mut conn = pool.get().await?;
            state::scan_targets(&mut conn, &tenant).await?
        };
        for (customer, stripe_account) in targets {
            let at = FactOrigin {
                tenant: tenant.clone(),
                customer,
                stripe_account,
                occurred_at: now.timestamp(),
                source: "scan".into(),
                now,
            };
            let mut conn = pool.get().await?;
            let n = conn
                .transaction::<_, EngineError, _>(async |conn| {
                    state::lock_customer(conn, &at.tenant, &at.customer).await?;
                    let out = engine.scan_customer(conn, &at, now.date_naive()).await?;
                    events::outbox().enqueue(conn, &out).await?;
                    Ok(out.len())
                })
                .await?;
            report.customers += 1;
            report.events += n;
        }
        // Resolved signals fade: their accounts' scores move without any new fact.
        let since = crate::health::cutoff(now, &engine.weights);
        let accounts = {
            let mut conn = pool.get().await?;
            state::fading_accounts(&mut conn, &tenant, since).await?
        };
        for (account, csm) in accounts {
            let mut conn = pool.get().await?;
            let n = conn
                .transaction::<_, EngineError, _>(async |conn| {
                    let Some(change) =
                        crate::health::recompute(conn, &tenant, &account, now, &engine.weights)
                            .await?
                    else {
                        return Ok(0);
                    };
                    events::outbox()
                        .enqueue(conn, &[events::health(&tenant, &change, csm.as_deref())])
                        .await?;
                    Ok(1)
                })
                .await?;
            report.events += n;
        }
    }
    Ok(report)
}

#[derive(diesel::QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

/// Runs [`scan`] every `every`, one replica at a time.
pub async fn run(
    pool: PgPool,
    engine: Arc<Engine>,
    relay: Arc<Notify>,
    every: Duration,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = cancel.cancelled() => return,
        }
        let outcome = async {
            let mut lock = pool.get().await?;
            // Session lock on a dedicated connection: held for the whole scan.
            let got: Vec<Locked> = diesel::sql_query(
                "SELECT pg_try_advisory_lock(hashtextextended('risk.scan', 0)) AS locked",
            )
            .load(&mut lock)
            .await?;
            if !got.into_iter().next().is_some_and(|l| l.locked) {
                return anyhow::Ok(None);
            }
            let report = scan(&pool, &engine, Utc::now()).await;
            diesel::sql_query("SELECT pg_advisory_unlock(hashtextextended('risk.scan', 0))")
                .execute(&mut lock)
                .await?;
            report.map(Some)
        }
        .await;
        match outcome {
            Ok(Some(report)) => {
                relay.notify_one();
                tracing::info!(
                    customers = report.customers,
                    events = report.events,
                    "daily scan done"
                );
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"), "daily scan failed; next round retries")
            }
        }
    }
}
