//! Durable before 2xx, with group commit: concurrent requests hand their event to one
//! committer task, which inserts whatever has queued up in a single transaction and then
//! answers every waiter. No request is answered before the commit that holds its event.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods as _, QueryDsl as _};
use diesel_async::RunQueryDsl as _;
use platform::db::PgPool;
use tokio::sync::{mpsc, oneshot, Notify};

use crate::schema::events;

/// An event ready to be stored.
#[derive(Debug, Clone, diesel::Insertable)]
#[diesel(table_name = events)]
pub struct NewEvent {
    pub event_id: String,
    pub tenant_id: Option<String>,
    pub endpoint: String,
    pub account: Option<String>,
    pub event_type: String,
    pub created: DateTime<Utc>,
    pub livemode: bool,
    pub api_version: Option<String>,
    pub payload: String,
    pub traceparent: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    New,
    /// Already stored earlier: answered 2xx, not published again.
    Duplicate,
}

#[derive(Debug, thiserror::Error)]
#[error("event store unavailable: {0}")]
pub struct StoreError(String);

type Request = (NewEvent, oneshot::Sender<Result<Stored, StoreError>>);

#[derive(Clone)]
pub struct EventStore {
    tx: mpsc::Sender<Request>,
}

impl EventStore {
    /// Starts the committer. `committed` is notified after each commit (wakes the relay).
    pub fn start(pool: PgPool, max_batch: usize, committed: Arc<Notify>) -> Self {
        let (tx, rx) = mpsc::channel(max_batch.max(1) * 4);
        tokio::spawn(committer(pool, rx, max_batch.max(1), committed));
        Self { tx }
    }

    /// Stores the event; returns once its transaction has committed.
    pub async fn store(&self, event: NewEvent) -> Result<Stored, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((event, reply))
            .await
            .map_err(|_| StoreError("committer stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError("committer stopped".into()))?
    }
}

async fn committer(
    pool: PgPool,
    mut rx: mpsc::Receiver<Request>,
    max_batch: usize,
    committed: Arc<Notify>,
) {
    let mut batch: Vec<Request> = Vec::with_capacity(max_batch);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let rows: Vec<NewEvent> = batch.iter().map(|(e, _)| e.clone()).collect();
        metrics::histogram!("ingress_group_commit_size").record(rows.len() as f64);
        match insert(&pool, &rows).await {
            Ok(inserted) => {
                committed.notify_one();
                for (event, reply) in batch.drain(..) {
                    let outcome = if inserted.contains(&event.event_id) {
                        Stored::New
                    } else {
                        Stored::Duplicate
                    };
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(error) => {
                tracing::warn!(%error, events = rows.len(), "could not store events");
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(Err(StoreError(error.to_string())));
                }
            }
        }
    }
}

/// One multi-row INSERT; returns the ids that were new.
async fn insert(
    pool: &PgPool,
    rows: &[NewEvent],
) -> anyhow::Result<std::collections::HashSet<String>> {
    let mut conn = pool.get().await?;
    let inserted: Vec<String> = diesel::insert_into(events::table)
        .values(rows)
        .on_conflict(events::event_id)
        .do_nothing()
        .returning(events::event_id)
        .get_results(&mut conn)
        .await?;
    Ok(inserted.into_iter().collect())
}

/// Events stored but not yet published (for tests and the outbox-lag gauge).
pub async fn unpublished(pool: &PgPool) -> anyhow::Result<i64> {
    let mut conn = pool.get().await?;
    Ok(events::table
        .filter(events::published_at.is_null())
        .count()
        .get_result(&mut conn)
        .await?)
}
