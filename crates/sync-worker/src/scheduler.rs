//! Periodic work: every `reconcile_interval_secs`, one replica (whoever takes the advisory
//! lock) queues a reconciliation for every active connection, and a backfill for any active
//! connection that has none yet — the safety net behind query-api's best-effort publish.

use std::sync::Arc;
use std::time::Duration;

use contracts::v1::{sync_job::Kind, SyncJob};
use contracts::Contract as _;
use diesel::sql_types::{BigInt, Bool};
use diesel::{ExpressionMethods as _, QueryDsl as _};
use diesel_async::{AsyncConnection as _, RunQueryDsl as _};
use platform::amqp::{Outgoing, Publisher};
use platform::db::PgPool;
use platform::CancellationToken;
use prost::Message as _;

use crate::connections::Connections;
use crate::schema::sync_runs;

/// Advisory lock key of the scheduler ("sync-sched").
const LOCK: i64 = 0x7379_6e63_2d73_6368;

pub struct Scheduler {
    pub pool: PgPool,
    pub connections: Arc<Connections>,
    pub publisher: Arc<Publisher>,
    pub interval: Duration,
}

impl Scheduler {
    pub async fn run(self, cancel: CancellationToken) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = cancel.cancelled() => return,
            }
            match self.tick().await {
                Ok(queued) if queued > 0 => tracing::info!(queued, "sync jobs scheduled"),
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(error = %format!("{error:#}"), "scheduler tick failed")
                }
            }
        }
    }

    /// Queues this period's jobs if this replica holds the lock; returns how many.
    pub async fn tick(&self) -> anyhow::Result<usize> {
        let mut conn = self.pool.get().await?;
        let jobs = conn
            .transaction::<_, anyhow::Error, _>(async |conn| {
                #[derive(diesel::QueryableByName)]
                struct Locked {
                    #[diesel(sql_type = Bool)]
                    locked: bool,
                }
                let locked: Locked =
                    diesel::sql_query("SELECT pg_try_advisory_xact_lock($1) AS locked")
                        .bind::<BigInt, _>(LOCK)
                        .get_result(conn)
                        .await?;
                if !locked.locked {
                    return Ok(Vec::new());
                }
                let mut jobs = Vec::new();
                let period = chrono::Utc::now().timestamp() / self.interval.as_secs().max(1) as i64;
                for c in self.connections.active().await? {
                    let backfilled: i64 = sync_runs::table
                        .filter(sync_runs::connection_id.eq(c.connection_id))
                        .filter(sync_runs::kind.eq("backfill"))
                        .count()
                        .get_result(conn)
                        .await?;
                    let kind = if backfilled == 0 {
                        Kind::Backfill
                    } else {
                        Kind::Reconcile
                    };
                    jobs.push((
                        c.tenant_id,
                        SyncJob {
                            // Same id for the same connection and period: a second replica's
                            // or a retried tick's job is recognisable as the same.
                            job_id: format!("{}:{}:{period}", c.connection_id, kind.as_str_name()),
                            connection_id: c.connection_id.to_string(),
                            kind: kind as i32,
                            object_id: String::new(),
                            requested_at_ms: chrono::Utc::now().timestamp_millis(),
                        },
                    ));
                }
                Ok(jobs)
            })
            .await?;
        for (tenant, job) in &jobs {
            self.publisher
                .publish(&Outgoing::protobuf(
                    SyncJob::EXCHANGE,
                    job.routing_key(),
                    job.job_id.clone(),
                    SyncJob::TYPE,
                    tenant.clone(),
                    job.encode_to_vec(),
                ))
                .await?;
        }
        Ok(jobs.len())
    }
}
