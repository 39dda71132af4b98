//! `sync.jobs`: backfills and reconciliations per connection. A job runs to
//! completion inside its delivery; a crash redelivers it and the run resumes from its
//! cursor. A revoked or deleted connection's job is dropped: there is nothing to sync.

use std::sync::Arc;

use contracts::v1::{sync_job::Kind, SyncJob};
use platform::amqp::{HandleError, Handler, Incoming};
use platform::db::PgPool;
use prost::Message as _;
use uuid::Uuid;

use crate::backfill;
use crate::connections::{ConnectionError, Connections};
use crate::credentials::CredentialsError;
use crate::events;
use crate::reconcile;

#[derive(Clone)]
pub struct JobRunner {
    pub pool: PgPool,
    pub connections: Arc<Connections>,
    pub wake: Arc<tokio::sync::Notify>,
    /// The service's shutdown: a job still running then is requeued at once and left to
    /// run on in its own task until the process exits (a backfill resumes from its
    /// cursors, a reconciliation's run is taken over), so a long job never holds up SIGTERM.
    pub cancel: platform::CancellationToken,
}

impl Handler for JobRunner {
    async fn handle(&self, message: &Incoming) -> Result<(), HandleError> {
        let job = SyncJob::decode(message.payload.as_slice())
            .map_err(|e| HandleError::permanent(anyhow::anyhow!("not a SyncJob: {e}")))?;
        let connection_id: Uuid = job.connection_id.parse().map_err(|_| {
            HandleError::permanent(anyhow::anyhow!(
                "job {} names no valid connection id",
                job.job_id
            ))
        })?;
        let connection = match self.connections.get(connection_id).await {
            Ok(c) => c,
            Err(ConnectionError::Credentials(
                CredentialsError::Revoked { .. } | CredentialsError::NotFound { .. },
            )) => {
                tracing::info!(connection = %connection_id, job = %job.job_id, "connection revoked or gone; job dropped");
                return Ok(());
            }
            Err(e) if e.is_transient() => return Err(HandleError::transient(e)),
            Err(e) => return Err(HandleError::permanent(e)),
        };
        let kind = Kind::try_from(job.kind).unwrap_or(Kind::Unspecified);
        // Its own task: a job's transactions run in it, and dropping them half-way would
        // return a connection still inside a transaction (holding its locks) to the pool,
        // where the other consumers' handlers wait on those locks while they drain.
        let task = tokio::spawn({
            let (runner, job) = (self.clone(), job.clone());
            async move { runner.run(kind, &job, connection_id, &connection).await }
        });
        let result = tokio::select! {
            result = task => result.unwrap_or_else(|e| Err(HandleError::transient(anyhow::anyhow!("sync job task: {e}")))),
            _ = self.cancel.cancelled() => {
                tracing::info!(job = %job.job_id, kind = kind.as_str_name(), "shutting down: job interrupted and requeued");
                Err(HandleError::transient(anyhow::anyhow!("interrupted by shutdown")))
            }
        };
        // Alerted on (`BillingSyncJobsFailing`): a tenant whose sync fails sees stale billing.
        let outcome = match &result {
            Ok(()) => "succeeded",
            Err(HandleError::Transient(_)) => "retried",
            Err(HandleError::Permanent(_)) => "failed",
        };
        metrics::counter!("sync_jobs_total", "kind" => kind.as_str_name(), "outcome" => outcome)
            .increment(1);
        result
    }
}

impl JobRunner {
    async fn run(
        &self,
        kind: Kind,
        job: &SyncJob,
        connection_id: Uuid,
        connection: &crate::connections::Connection,
    ) -> Result<(), HandleError> {
        match kind {
            Kind::Backfill => {
                let result = backfill::run(
                    &self.pool,
                    &connection.api,
                    &connection.scope,
                    connection_id,
                )
                .await;
                self.wake.notify_one();
                match result {
                    Ok(_) => Ok(()),
                    Err(e)
                        if matches!(
                            &e,
                            backfill::BackfillError::Stripe(
                                stripe_api::ApiError::Unauthorized { .. }
                            )
                        ) =>
                    {
                        // The key stopped working: recorded as failed; syncing resumes when
                        // the tenant reconnects (a new connection and backfill).
                        self.connections.forget(connection_id).await;
                        Err(HandleError::permanent(e))
                    }
                    Err(e) if e.is_transient() => Err(HandleError::transient(e)),
                    Err(e) => Err(HandleError::permanent(e)),
                }
            }
            Kind::Reconcile => {
                let result = reconcile::run(&self.pool, connection).await;
                self.wake.notify_one();
                match result {
                    Ok(report) if report.coalesced => Ok(()),
                    Ok(report) => {
                        tracing::info!(connection = %connection_id, events = report.events_seen, repaired = report.repaired, relisted = report.objects_relisted, "reconciled");
                        Ok(())
                    }
                    Err(e) if e.is_transient() => Err(HandleError::transient(e)),
                    Err(e) => Err(HandleError::permanent(e)),
                }
            }
            Kind::Refetch => {
                match events::refetch_object(&self.pool, connection, &job.object_id, &job.job_id)
                    .await
                {
                    Ok(outcome) => {
                        tracing::info!(object = %job.object_id, outcome, "refetched");
                        self.wake.notify_one();
                        Ok(())
                    }
                    Err(events::ApplyError::Transient(e)) => {
                        Err(HandleError::transient(anyhow::anyhow!(e)))
                    }
                    Err(events::ApplyError::Permanent(e)) => {
                        Err(HandleError::permanent(anyhow::anyhow!(e)))
                    }
                }
            }
            other => {
                tracing::warn!(job = %job.job_id, kind = ?other, "job kind not handled; dropped");
                Ok(())
            }
        }
    }
}
