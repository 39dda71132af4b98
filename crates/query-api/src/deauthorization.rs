//! `account.application.deauthorized`: a connected account removed our Connect application,
//! so every OAuth grant for it is dead. The connections holding such a grant are marked
//! revoked (the sync worker sees that in `integration.sync_connections` and stops) and each
//! revocation is audit-logged with actor `stripe`. Restricted-key connections to the same
//! account are untouched: the key is not part of the Connect authorization.

use contracts::v1::StripeEventReceived;
use diesel::{ExpressionMethods as _, QueryDsl as _};
use diesel_async::{AsyncConnection as _, RunQueryDsl as _};
use platform::{
    amqp::{HandleError, Handler, Incoming},
    db::PgPool,
};
use prost::Message as _;
use uuid::Uuid;

use crate::{audit, schema::connections};

/// The Stripe event type (and routing key on `stripe.events`) this consumer handles.
pub const EVENT_TYPE: &str = "account.application.deauthorized";

/// Inbox consumer name: one record per applied event, so a redelivery changes nothing.
const CONSUMER: &str = contracts::queues::QUERY_API_CONNECTIONS;

/// Audit actor for changes Stripe told us about.
const ACTOR: &str = "stripe";

pub struct Deauthorizations {
    pool: PgPool,
}

impl Deauthorizations {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

impl Handler for Deauthorizations {
    async fn handle(&self, message: &Incoming) -> Result<(), HandleError> {
        let event = StripeEventReceived::decode(message.payload.as_slice()).map_err(|e| {
            HandleError::permanent(anyhow::anyhow!("not a StripeEventReceived: {e}"))
        })?;
        if event.event_type != EVENT_TYPE {
            tracing::debug!(event_type = %event.event_type, "not a deauthorization; ignored");
            return Ok(());
        }
        let account = connected_account(&event).ok_or_else(|| {
            HandleError::permanent(anyhow::anyhow!(
                "deauthorization {} names no connected account",
                event.event_id
            ))
        })?;
        let message_id = Some(message.message_id.as_str())
            .filter(|id| !id.is_empty())
            .unwrap_or(&event.event_id);
        if message_id.is_empty() {
            return Err(HandleError::permanent(anyhow::anyhow!(
                "deauthorization without message or event id cannot be deduplicated"
            )));
        }
        let mut conn = self.pool.get().await.map_err(HandleError::transient)?;
        let revoked = conn
            .transaction::<_, diesel::result::Error, _>(async |conn| {
                if !platform::inbox::first_delivery(conn, "integration", CONSUMER, message_id)
                    .await?
                {
                    return Ok(Vec::new());
                }
                revoke(conn, &account, &event.event_id).await
            })
            .await
            .map_err(HandleError::transient)?;
        for (id, tenant) in &revoked {
            tracing::info!(%tenant, connection = %id, %account, "Connect access revoked by Stripe");
        }
        Ok(())
    }
}

/// The account the event is about: ingress's field, else the raw event's `account`.
fn connected_account(event: &StripeEventReceived) -> Option<String> {
    if !event.account.is_empty() {
        return Some(event.account.clone());
    }
    serde_json::from_slice::<serde_json::Value>(&event.payload)
        .ok()?
        .get("account")?
        .as_str()
        .filter(|a| !a.is_empty())
        .map(str::to_string)
}

/// Revokes every active OAuth connection to `account` (any tenant: the grant is the
/// platform's, so all its tokens died together) and audits each one.
async fn revoke(
    conn: &mut diesel_async::AsyncPgConnection,
    account: &str,
    event_id: &str,
) -> diesel::QueryResult<Vec<(Uuid, String)>> {
    let revoked: Vec<(Uuid, String)> = diesel::update(
        connections::table
            .filter(connections::account_id.eq(account))
            .filter(connections::kind.eq("oauth"))
            .filter(connections::status.eq("active")),
    )
    .set((
        connections::status.eq("revoked"),
        connections::revoked_at.eq(diesel::dsl::now),
    ))
    .returning((connections::id, connections::tenant_id))
    .get_results(conn)
    .await?;
    for (id, tenant) in &revoked {
        audit::record_by(
            conn,
            tenant,
            ACTOR,
            "stripe.deauthorized",
            Some(&id.to_string()),
            serde_json::json!({ "account_id": account, "event_id": event_id }),
        )
        .await?;
    }
    Ok(revoked)
}
