//! Transactional outbox relay: publishes stored events to `stripe.events` with confirms and
//! marks them published in the same transaction that locked them. While the broker is down
//! the events wait in Postgres; a crash between publish and commit republishes them, which
//! consumers absorb by `message_id`.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use contracts::{v1::StripeEventReceived, Contract as _};
use diesel::{ExpressionMethods as _, QueryDsl as _};
use diesel_async::{AsyncConnection as _, RunQueryDsl as _};
use platform::{
    amqp::{Outgoing, Publisher},
    backoff::Backoff,
    db::PgPool,
    CancellationToken,
};
use prost::Message as _;
use tokio::sync::Notify;

use crate::schema::events;

#[derive(Debug, diesel::Queryable)]
struct Pending {
    id: i64,
    event_id: String,
    tenant_id: Option<String>,
    endpoint: String,
    account: Option<String>,
    event_type: String,
    created: DateTime<Utc>,
    livemode: bool,
    api_version: Option<String>,
    payload: String,
    traceparent: Option<String>,
    received_at: DateTime<Utc>,
}

pub struct Relay {
    pub pool: PgPool,
    pub publisher: Arc<Publisher>,
    pub wake: Arc<Notify>,
    pub batch: i64,
    pub poll: Duration,
}

impl Relay {
    /// Runs until `cancel`; publishes everything pending before it stops if the broker is up.
    pub async fn run(self, cancel: CancellationToken) {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        loop {
            match self.drain().await {
                Ok(()) => backoff.reset(),
                Err(error) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %format!("{error:#}"), retry_in_ms = delay.as_millis() as u64, "outbox relay stalled");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => continue,
                        _ = cancel.cancelled() => return,
                    }
                }
            }
            if cancel.is_cancelled() {
                return;
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.poll) => {}
                _ = cancel.cancelled() => {}
            }
        }
    }

    /// Publishes rounds until nothing is pending.
    async fn drain(&self) -> anyhow::Result<()> {
        while self.round().await? == self.batch as usize {}
        Ok(())
    }

    /// One round: lock a batch (other replicas skip it), publish with confirms, mark published.
    pub async fn round(&self) -> anyhow::Result<usize> {
        let mut conn = self.pool.get().await?;
        let publisher = self.publisher.clone();
        let batch = self.batch;
        conn.transaction::<_, anyhow::Error, _>(async move |conn| {
            let mut pending: Vec<Pending> = events::table
                .filter(events::published_at.is_null())
                .order(events::id)
                .limit(batch)
                .for_update()
                .skip_locked()
                .select((
                    events::id,
                    events::event_id,
                    events::tenant_id,
                    events::endpoint,
                    events::account,
                    events::event_type,
                    events::created,
                    events::livemode,
                    events::api_version,
                    events::payload,
                    events::traceparent,
                    events::received_at,
                ))
                .load(conn)
                .await?;
            if pending.is_empty() {
                return Ok(0);
            }
            resolve_connect_tenants(conn, &mut pending).await?;
            let messages: Vec<Outgoing> = pending.iter().map(to_message).collect();
            publisher.publish_all(&messages).await?;
            let ids: Vec<i64> = pending.iter().map(|p| p.id).collect();
            diesel::update(events::table.filter(events::id.eq_any(&ids)))
                .set(events::published_at.eq(diesel::dsl::now))
                .execute(conn)
                .await?;
            let now = Utc::now();
            for p in &pending {
                let lag = (now - p.received_at).num_microseconds().unwrap_or(0).max(0) as f64 / 1e6;
                metrics::histogram!("ingress_outbox_lag_seconds").record(lag);
            }
            metrics::counter!("ingress_events_published_total").increment(pending.len() as u64);
            Ok(pending.len())
        })
        .await
    }
}

/// Connect events carry the connected account; its tenant comes from query-api's
/// `integration.account_tenants` view (the owner's read model). Resolved for exactly the rows
/// this round locked, inside its transaction, so no event can slip between resolution and
/// publishing. Events whose account has no active connection keep no tenant and are published
/// as such, counted and logged.
async fn resolve_connect_tenants(
    conn: &mut diesel_async::AsyncPgConnection,
    pending: &mut [Pending],
) -> diesel::QueryResult<()> {
    use diesel::sql_types::{Array, Bool, Text};

    #[derive(diesel::QueryableByName)]
    struct Exists {
        #[diesel(sql_type = Bool)]
        exists: bool,
    }
    #[derive(diesel::QueryableByName)]
    struct AccountTenant {
        #[diesel(sql_type = Text)]
        account_id: String,
        #[diesel(sql_type = Text)]
        tenant_id: String,
    }

    let mut accounts: Vec<String> = pending
        .iter()
        .filter(|p| p.tenant_id.is_none())
        .filter_map(|p| p.account.clone())
        .collect();
    if accounts.is_empty() {
        return Ok(());
    }
    accounts.sort();
    accounts.dedup();
    // Checked without erroring, so a missing view (first deploy) cannot abort the transaction.
    let view: Exists = diesel::sql_query(
        "SELECT to_regclass('integration.account_tenants') IS NOT NULL AS exists",
    )
    .get_result(conn)
    .await?;
    if !view.exists {
        return Ok(());
    }
    let tenants: std::collections::HashMap<String, String> = diesel::sql_query(
        "SELECT account_id, min(tenant_id) AS tenant_id FROM integration.account_tenants \
         WHERE account_id = ANY($1) GROUP BY account_id",
    )
    .bind::<Array<Text>, _>(&accounts)
    .load::<AccountTenant>(conn)
    .await?
    .into_iter()
    .map(|r| (r.account_id, r.tenant_id))
    .collect();
    for p in pending.iter_mut().filter(|p| p.tenant_id.is_none()) {
        let Some(tenant) = p.account.as_ref().and_then(|a| tenants.get(a)) else {
            continue;
        };
        diesel::update(events::table.filter(events::id.eq(p.id)))
            .set(events::tenant_id.eq(tenant))
            .execute(conn)
            .await?;
        p.tenant_id = Some(tenant.clone());
    }
    Ok(())
}

fn to_message(p: &Pending) -> Outgoing {
    if p.tenant_id.is_none() {
        metrics::counter!("ingress_events_unknown_account_total").increment(1);
        tracing::warn!(event_id = %p.event_id, account = p.account.as_deref().unwrap_or(""), "event for an account with no active connection; published without tenant");
    }
    let body = StripeEventReceived {
        event_id: p.event_id.clone(),
        event_type: p.event_type.clone(),
        account: p.account.clone().unwrap_or_default(),
        created: p.created.timestamp(),
        livemode: p.livemode,
        api_version: p.api_version.clone().unwrap_or_default(),
        payload: p.payload.as_bytes().to_vec(),
        received_at_ms: p.received_at.timestamp_millis(),
        endpoint: p.endpoint.clone(),
    };
    let mut message = Outgoing::protobuf(
        StripeEventReceived::EXCHANGE,
        body.routing_key(),
        p.event_id.clone(),
        StripeEventReceived::TYPE,
        p.tenant_id.clone().unwrap_or_default(),
        body.encode_to_vec(),
    );
    // Continue the trace of the HTTP request that delivered the event.
    message.traceparent = p.traceparent.clone();
    message
}
