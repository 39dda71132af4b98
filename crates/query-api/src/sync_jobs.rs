//! Asks the sync worker to backfill a connection as soon as it is stored. Best effort: the
//! connection is already committed when this runs, and the sync worker's scheduler starts a
//! backfill for any active connection that never had one, so a lost request only delays it.

use std::time::Duration;

use contracts::{
    v1::{sync_job::Kind, SyncJob},
    Contract as _,
};
use platform::amqp::{Outgoing, Publisher};
use prost::Message as _;
use uuid::Uuid;

/// Longest an API answer waits for the broker's confirm before giving up on the request.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

/// The backfill request for a freshly stored connection; `message_id` = `job_id`.
pub fn backfill(tenant: &str, connection_id: Uuid) -> Outgoing {
    let job = SyncJob {
        job_id: Uuid::new_v4().to_string(),
        connection_id: connection_id.to_string(),
        kind: Kind::Backfill as i32,
        object_id: String::new(),
        requested_at_ms: chrono::Utc::now().timestamp_millis(),
    };
    Outgoing::protobuf(
        SyncJob::EXCHANGE,
        job.routing_key(),
        job.job_id.clone(),
        SyncJob::TYPE,
        tenant,
        job.encode_to_vec(),
    )
}

/// Publishes a backfill with confirms; a failure is logged, never returned.
pub async fn request_backfill(publisher: &Publisher, tenant: &str, connection_id: Uuid) {
    let message = backfill(tenant, connection_id);
    let outcome = tokio::time::timeout(PUBLISH_TIMEOUT, publisher.publish(&message)).await;
    let error = match outcome {
        Ok(Ok(())) => return,
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no confirm within {PUBLISH_TIMEOUT:?}"),
    };
    tracing::warn!(
        %tenant,
        connection = %connection_id,
        %error,
        "backfill not queued; the sync worker's scheduler will start it"
    );
}
