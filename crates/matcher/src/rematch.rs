//! The re-matcher: takes pending work a tenant at a time (under a per-tenant advisory lock,
//! so replicas never decide one tenant concurrently), decides the customers again, and in
//! the same transaction writes the links that changed, their history, and a
//! `CustomerLinkChanged` per change to the outbox. Pending rows are deleted in that
//! transaction too: a crash leaves them for the next round.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel_async::{AsyncConnection as _, AsyncPgConnection};
use domain::matching::{AccountCandidate, AccountIndex, MatchConfig};
use platform::db::PgPool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::decide::{decide, TenantAccounts};
use crate::facts;
use crate::store::{self, Claimed, LinkWrite};

/// Customers decided per transaction at most (a whole-tenant request is one transaction).
const CLAIM_LIMIT: i64 = 5_000;

pub struct Rematcher {
    pub pool: PgPool,
    pub config: MatchConfig,
    /// Woken by the consumers after they queue work; also polls.
    pub wake: Arc<Notify>,
    /// Woken after links were written, so the outbox relay publishes at once.
    pub relay: Arc<Notify>,
    pub poll: Duration,
    cache: Mutex<HashMap<String, (i64, Arc<TenantAccounts>)>>,
}

/// What one round did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RoundReport {
    pub tenant: Option<String>,
    pub decided: usize,
    pub changed: usize,
}

impl Rematcher {
    pub fn new(pool: PgPool, config: MatchConfig, wake: Arc<Notify>, relay: Arc<Notify>) -> Self {
        Self {
            pool,
            config,
            wake,
            relay,
            poll: Duration::from_millis(500),
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub async fn run(self, cancel: CancellationToken) {
        let mut backoff =
            platform::backoff::Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        loop {
            match self.round().await {
                Ok(report) if report.tenant.is_some() => {
                    backoff.reset();
                    if cancel.is_cancelled() {
                        return;
                    }
                    continue;
                }
                Ok(_) => backoff.reset(),
                Err(error) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %format!("{error:#}"), retry_in_ms = delay.as_millis() as u64, "re-match round failed");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => continue,
                        _ = cancel.cancelled() => return,
                    }
                }
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.poll) => {}
                _ = cancel.cancelled() => return,
            }
        }
    }

    /// Decides the pending work of one tenant; `tenant: None` when there was none to take.
    pub async fn round(&self) -> anyhow::Result<RoundReport> {
        let mut conn = self.pool.get().await?;
        let report = conn
            .transaction::<_, anyhow::Error, _>(async |conn| {
                for tenant in store::pending_tenants(conn, 16).await? {
                    if store::try_lock_tenant(conn, &tenant).await? {
                        return self.rematch_tenant(conn, tenant).await;
                    }
                }
                Ok(RoundReport::default())
            })
            .await?;
        if report.changed > 0 {
            self.relay.notify_one();
        }
        Ok(report)
    }

    async fn rematch_tenant(
        &self,
        conn: &mut AsyncPgConnection,
        tenant: String,
    ) -> anyhow::Result<RoundReport> {
        let started = Instant::now();
        let store::Claim { claimed, traces } =
            store::claim_pending(conn, &tenant, CLAIM_LIMIT).await?;
        let ids = match &claimed {
            Claimed::All => None,
            Claimed::Customers(ids) => Some(ids.as_slice()),
        };
        let accounts = self.accounts(conn, &tenant).await?;
        let customers = store::customers(conn, &tenant, ids).await?;
        let manual = store::manual_decisions(conn, &tenant, ids).await?;
        let links = store::links(conn, &tenant, ids).await?;

        let outcomes: Vec<_> = customers
            .iter()
            .map(|c| {
                let outcome = decide(
                    c,
                    manual.get(&c.stripe_customer_id),
                    &accounts,
                    &self.config,
                );
                (c, outcome)
            })
            .collect();
        let now_ms = chrono::Utc::now().timestamp_millis();
        let mut writes = Vec::new();
        for (customer, outcome) in &outcomes {
            let held = links.get(&customer.stripe_customer_id);
            if held.is_some_and(|h| h.outcome.same_as(outcome)) {
                continue;
            }
            writes.push(LinkWrite {
                customer,
                outcome,
                account_before: held.and_then(|h| h.outcome.account_id.as_deref()),
                version: held.map_or(1, |h| h.version + 1),
            });
        }
        store::write_links(conn, &tenant, &writes).await?;
        let messages: Vec<_> = writes
            .iter()
            .map(|w| {
                let mut message = facts::link_changed(&tenant, w, now_ms);
                // Continue the trace of the change that queued this customer.
                if let Some(trace) = traces.get(&w.customer.stripe_customer_id) {
                    message.traceparent = Some(trace.clone());
                }
                message
            })
            .collect();
        facts::outbox().enqueue(conn, &messages).await?;
        metrics::counter!("matcher_decisions_total").increment(outcomes.len() as u64);
        metrics::counter!("matcher_link_changes_total").increment(writes.len() as u64);
        metrics::histogram!("matcher_round_seconds").record(started.elapsed().as_secs_f64());
        tracing::debug!(tenant = %tenant, decided = outcomes.len(), changed = writes.len(), whole_tenant = matches!(claimed, Claimed::All), "re-matched");
        Ok(RoundReport {
            tenant: Some(tenant),
            decided: outcomes.len(),
            changed: writes.len(),
        })
    }

    /// The tenant's account index, rebuilt only when its accounts changed.
    async fn accounts(
        &self,
        conn: &mut AsyncPgConnection,
        tenant: &str,
    ) -> anyhow::Result<Arc<TenantAccounts>> {
        let version = store::accounts_version(conn, tenant).await?;
        if let Some((held, accounts)) = self.cache.lock().expect("cache lock").get(tenant) {
            if *held == version {
                return Ok(accounts.clone());
            }
        }
        let rows = store::live_accounts(conn, tenant).await?;
        let candidates: Vec<AccountCandidate> = rows
            .iter()
            .map(|a| AccountCandidate {
                id: a.account_id.as_str().into(),
                name: a.name.clone(),
                domains: a.domains.clone(),
                external_ids: a.external_ids.clone(),
            })
            .collect();
        let accounts = Arc::new(TenantAccounts {
            index: AccountIndex::build(&candidates),
            csm: rows
                .into_iter()
                .map(|a| (a.account_id, a.csm_user_id))
                .collect(),
        });
        self.cache
            .lock()
            .expect("cache lock")
            .insert(tenant.to_owned(), (version, accounts.clone()));
        Ok(accounts)
    }
}
