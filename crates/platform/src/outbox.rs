//! Transactional outbox for a service's facts: messages are inserted in the same
//! transaction as the change they describe, and a relay publishes them with confirms and
//! marks them published. A crash between commit and publish only delays a fact; a crash
//! between publish and mark republishes it, which consumers absorb by `message_id`.
//!
//! Each owning schema has an `outbox` table with the columns of [`OUTBOX_DDL`] (created by
//! that service's own migration; one writer per schema).

use std::{sync::Arc, time::Duration};

use diesel::sql_types::{BigInt, Bytea, Nullable, Text};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use futures_util::future::join_all;
use tokio::sync::Notify;

use crate::amqp::{Outgoing, PublishError, Publisher};
use crate::backoff::Backoff;
use crate::db::PgPool;
use crate::CancellationToken;

/// The table every outbox uses (documentation; the migrations spell it out).
pub const OUTBOX_DDL: &str =
    "CREATE TABLE outbox (id BIGSERIAL PRIMARY KEY, exchange TEXT NOT NULL, \
    routing_key TEXT NOT NULL, message_id TEXT NOT NULL, message_type TEXT NOT NULL, \
    tenant_id TEXT NOT NULL, traceparent TEXT, payload BYTEA NOT NULL, \
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(), published_at TIMESTAMPTZ)";

/// An outbox in `schema` (a lowercase identifier, checked).
#[derive(Debug, Clone)]
pub struct Outbox {
    table: String,
}

#[derive(Debug, diesel::QueryableByName)]
struct Pending {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    exchange: String,
    #[diesel(sql_type = Text)]
    routing_key: String,
    #[diesel(sql_type = Text)]
    message_id: String,
    #[diesel(sql_type = Text)]
    message_type: String,
    #[diesel(sql_type = Text)]
    tenant_id: String,
    #[diesel(sql_type = Nullable<Text>)]
    traceparent: Option<String>,
    #[diesel(sql_type = Bytea)]
    payload: Vec<u8>,
}

impl Outbox {
    pub fn new(schema: &str) -> Self {
        assert!(
            !schema.is_empty() && schema.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "outbox schema `{schema}` must be lowercase letters or '_'"
        );
        Outbox {
            table: format!("{schema}.outbox"),
        }
    }

    /// Queues messages; call inside the transaction that makes the change.
    pub async fn enqueue(
        &self,
        conn: &mut AsyncPgConnection,
        messages: &[Outgoing],
    ) -> diesel::QueryResult<()> {
        if messages.is_empty() {
            return Ok(());
        }
        // One statement: unnest of parallel arrays keeps this a single round trip.
        let sql = format!(
            "INSERT INTO {} (exchange, routing_key, message_id, message_type, tenant_id, traceparent, payload) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bytea[])",
            self.table
        );
        let col = |f: fn(&Outgoing) -> String| messages.iter().map(f).collect::<Vec<_>>();
        diesel::sql_query(sql)
            .bind::<diesel::sql_types::Array<Text>, _>(col(|m| m.exchange.clone()))
            .bind::<diesel::sql_types::Array<Text>, _>(col(|m| m.routing_key.clone()))
            .bind::<diesel::sql_types::Array<Text>, _>(col(|m| m.message_id.clone()))
            .bind::<diesel::sql_types::Array<Text>, _>(col(|m| m.message_type.clone()))
            .bind::<diesel::sql_types::Array<Text>, _>(col(|m| m.tenant_id.clone()))
            .bind::<diesel::sql_types::Array<Nullable<Text>>, _>(
                messages
                    .iter()
                    .map(|m| m.traceparent.clone())
                    .collect::<Vec<_>>(),
            )
            .bind::<diesel::sql_types::Array<Bytea>, _>(
                messages
                    .iter()
                    .map(|m| m.payload.clone())
                    .collect::<Vec<_>>(),
            )
            .execute(conn)
            .await?;
        Ok(())
    }

    /// A relay publishing this outbox until cancelled.
    pub fn relay(&self, pool: PgPool, publisher: Arc<Publisher>) -> OutboxRelay {
        OutboxRelay {
            outbox: self.clone(),
            pool,
            publisher,
            wake: Arc::new(Notify::new()),
            batch: 200,
            poll: Duration::from_millis(200),
        }
    }
}

pub struct OutboxRelay {
    outbox: Outbox,
    pool: PgPool,
    publisher: Arc<Publisher>,
    /// Notify after enqueueing to publish at once instead of at the next poll.
    pub wake: Arc<Notify>,
    pub batch: i64,
    pub poll: Duration,
}

impl OutboxRelay {
    pub async fn run(self, cancel: CancellationToken) {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        loop {
            let drained = async {
                while self.round().await? == self.batch as usize {}
                anyhow::Ok(())
            }
            .await;
            match drained {
                Ok(()) => backoff.reset(),
                Err(error) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %format!("{error:#}"), table = %self.outbox.table, retry_in_ms = delay.as_millis() as u64, "outbox relay stalled");
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

    /// Locks a batch (other replicas skip it), publishes it, marks it published.
    pub async fn round(&self) -> anyhow::Result<usize> {
        let mut conn = self.pool.get().await?;
        let table = self.outbox.table.clone();
        let publisher = self.publisher.clone();
        let batch = self.batch;
        conn.transaction::<_, anyhow::Error, _>(async move |conn| {
            let pending: Vec<Pending> = diesel::sql_query(format!(
                "SELECT id, exchange, routing_key, message_id, message_type, tenant_id, traceparent, payload \
                 FROM {table} WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED"
            ))
            .bind::<BigInt, _>(batch)
            .load(conn)
            .await?;
            if pending.is_empty() {
                return Ok(0);
            }
            let messages: Vec<Outgoing> = pending.iter().map(to_message).collect();
            // Concurrent publishes share one confirm channel (pipelined); each gets its own
            // outcome, so one fact nobody subscribes to does not hold back the rest.
            let results = join_all(messages.iter().map(|m| publisher.publish(m))).await;
            for (message, result) in messages.iter().zip(results) {
                match result {
                    Ok(()) => {}
                    Err(PublishError::Unroutable { .. }) => {
                        // Nobody subscribes to this routing key (by topology): dropping it
                        // is what the bus would do; count it so a missing queue shows.
                        metrics::counter!("outbox_unroutable_total", "routing_key" => message.routing_key.clone())
                            .increment(1);
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            let ids: Vec<i64> = pending.iter().map(|p| p.id).collect();
            diesel::sql_query(format!(
                "UPDATE {table} SET published_at = now() WHERE id = ANY($1)"
            ))
            .bind::<diesel::sql_types::Array<BigInt>, _>(ids)
            .execute(conn)
            .await?;
            metrics::counter!("outbox_published_total").increment(pending.len() as u64);
            Ok(pending.len())
        })
        .await
    }
}

fn to_message(p: &Pending) -> Outgoing {
    Outgoing {
        exchange: p.exchange.clone(),
        routing_key: p.routing_key.clone(),
        message_id: p.message_id.clone(),
        message_type: p.message_type.clone(),
        content_type: "application/x-protobuf".into(),
        tenant_id: p.tenant_id.clone(),
        traceparent: p.traceparent.clone(),
        extra_headers: Vec::new(),
        payload: p.payload.clone(),
    }
}
