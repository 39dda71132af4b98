//! Delivers alerts to the tenant's HTTPS webhook, signed like Stripe signs its webhooks
//! (`CSCX-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`, secret from
//! `integration.alert_webhook_endpoints`, opened with the shared master keys).
//!
//! Due rows of `risk.alert_deliveries` are claimed with a lease (their next attempt moved a
//! lease ahead, `FOR UPDATE SKIP LOCKED`), so replicas never send the same row at once and a
//! crash mid-delivery only re-delivers after the lease. 2xx = delivered; anything else is
//! retried with exponential backoff up to `max_attempts`, then `failed`. Receivers dedupe by
//! the `Idempotency-Key` header (the alert id, or the digest's id). Hourly-digest alerts of one
//! CSM that fall due together go out as one digest.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::sql_types::{Bool, Bytea, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use platform::crypto::{alert_webhook_context, Sealed, Sealer};
use platform::db::PgPool;
use serde::Serialize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Delivery tunables (`[risk_engine]` keys `delivery_*`).
#[derive(Debug, Clone)]
pub struct DeliveryOptions {
    pub retry_base: Duration,
    pub max_attempts: i32,
    pub timeout: Duration,
    /// How long a claimed row is ours before another replica may retry it.
    pub lease: Duration,
    pub batch: i64,
    pub poll: Duration,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        Self {
            retry_base: Duration::from_secs(5),
            max_attempts: 10,
            timeout: Duration::from_secs(10),
            lease: Duration::from_secs(60),
            batch: 50,
            poll: Duration::from_secs(1),
        }
    }
}

/// The wait before attempt `attempts + 1`: base × 2^(attempts − 1), at most an hour.
pub fn backoff(base: Duration, attempts: i32) -> Duration {
    let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 16)).unwrap_or(0);
    base.saturating_mul(2u32.saturating_pow(exp))
        .min(Duration::from_secs(3600))
}

#[derive(Debug, Clone, QueryableByName)]
struct Claimed {
    #[diesel(sql_type = SqlUuid)]
    alert_id: Uuid,
    #[diesel(sql_type = Text)]
    tenant_id: String,
    #[diesel(sql_type = Text)]
    csm_user_id: String,
    #[diesel(sql_type = Bool)]
    digest: bool,
    #[diesel(sql_type = Integer)]
    attempts: i32,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
}

/// One alert as the receiver sees it.
#[derive(Debug, Clone, Serialize, QueryableByName)]
pub struct AlertBody {
    #[diesel(sql_type = SqlUuid)]
    pub alert_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub signal_id: Uuid,
    #[diesel(sql_type = Text)]
    pub csm_user_id: String,
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = Text)]
    pub severity: String,
    #[diesel(sql_type = Text)]
    pub summary: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub account_id: Option<String>,
    #[diesel(sql_type = Text)]
    pub stripe_customer_id: String,
    #[diesel(sql_type = Timestamptz)]
    pub raised_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
}

#[derive(QueryableByName)]
struct Endpoint {
    #[diesel(sql_type = Text)]
    url: String,
    #[diesel(sql_type = Bytea)]
    secret_sealed: Vec<u8>,
    #[diesel(sql_type = Text)]
    secret_key_id: String,
}

#[derive(QueryableByName)]
struct Exists {
    #[diesel(sql_type = Bool)]
    exists: bool,
}

pub struct Deliverer {
    pub pool: PgPool,
    /// Without master keys no secret can be opened: deliveries wait (and a warning says so).
    pub sealer: Option<Arc<Sealer>>,
    pub http: reqwest::Client,
    pub options: DeliveryOptions,
    pub wake: Arc<Notify>,
}

enum Outcome {
    Delivered(u16),
    Retry { status: Option<u16>, error: String },
    Skipped(String),
}

impl Deliverer {
    pub async fn run(self, cancel: CancellationToken) {
        if self.sealer.is_none() {
            tracing::warn!("BILLING_MASTER_KEYS not set: alert webhooks are not delivered (alerts still go out on the bus)");
            return;
        }
        loop {
            match self.round().await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(error = %format!("{error:#}"), "alert delivery round failed")
                }
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.options.poll) => {}
                _ = cancel.cancelled() => return,
            }
        }
    }

    /// Claims due deliveries and sends them; returns how many rows it handled.
    pub async fn round(&self) -> anyhow::Result<usize> {
        let mut conn = self.pool.get().await?;
        let claimed: Vec<Claimed> = diesel::sql_query(
            "UPDATE risk.alert_deliveries d SET next_attempt_at = now() + make_interval(secs => $2), \
               attempts = d.attempts + 1 \
             WHERE d.alert_id IN (SELECT alert_id FROM risk.alert_deliveries WHERE status = 'pending' \
               AND next_attempt_at <= now() ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED) \
             RETURNING d.alert_id, d.tenant_id, d.csm_user_id, d.digest, d.attempts, d.created_at",
        )
        .bind::<diesel::sql_types::BigInt, _>(self.options.batch)
        .bind::<diesel::sql_types::Double, _>(self.options.lease.as_secs_f64())
        .load(&mut conn)
        .await?;
        if claimed.is_empty() {
            return Ok(0);
        }
        // Immediate alerts alone; digest alerts grouped per tenant and CSM.
        let mut groups: BTreeMap<(String, String, Option<Uuid>), Vec<Claimed>> = BTreeMap::new();
        for c in &claimed {
            let single = (!c.digest).then_some(c.alert_id);
            groups
                .entry((c.tenant_id.clone(), c.csm_user_id.clone(), single))
                .or_default()
                .push(c.clone());
        }
        for ((tenant, csm, _), rows) in groups {
            let outcome = self.deliver(&mut conn, &tenant, &csm, &rows).await;
            self.record(&mut conn, &rows, outcome).await?;
        }
        Ok(claimed.len())
    }

    async fn deliver(
        &self,
        conn: &mut AsyncPgConnection,
        tenant: &str,
        csm: &str,
        rows: &[Claimed],
    ) -> Outcome {
        match self.try_deliver(conn, tenant, csm, rows).await {
            Ok(outcome) => outcome,
            Err(error) => Outcome::Retry {
                status: None,
                error: format!("{error:#}"),
            },
        }
    }

    async fn try_deliver(
        &self,
        conn: &mut AsyncPgConnection,
        tenant: &str,
        csm: &str,
        rows: &[Claimed],
    ) -> anyhow::Result<Outcome> {
        let view: Vec<Exists> = diesel::sql_query(
            "SELECT to_regclass('integration.alert_webhook_endpoints') IS NOT NULL AS exists",
        )
        .load(conn)
        .await?;
        if !view.into_iter().next().is_some_and(|v| v.exists) {
            return Ok(Outcome::Skipped("no alert webhook configured".into()));
        }
        let mut endpoints: Vec<Endpoint> = diesel::sql_query(
            "SELECT url, secret_sealed, secret_key_id FROM integration.alert_webhook_endpoints WHERE tenant_id = $1",
        )
        .bind::<Text, _>(tenant)
        .load(conn)
        .await?;
        let Some(endpoint) = endpoints.pop() else {
            return Ok(Outcome::Skipped("no alert webhook configured".into()));
        };
        let sealer = self
            .sealer
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("no master keys"))?;
        let secret = sealer
            .open(
                &Sealed {
                    key_id: endpoint.secret_key_id,
                    bytes: endpoint.secret_sealed,
                },
                &alert_webhook_context(tenant),
            )
            .map_err(|e| anyhow::anyhow!("webhook secret: {e}"))?;
        let secret =
            String::from_utf8(secret).map_err(|_| anyhow::anyhow!("webhook secret is not text"))?;
        let ids: Vec<Uuid> = rows.iter().map(|r| r.alert_id).collect();
        let alerts: Vec<AlertBody> = diesel::sql_query(
            "SELECT a.id AS alert_id, s.id AS signal_id, a.csm_user_id, s.kind, s.severity, s.summary, s.account_id, \
             s.stripe_customer_id, s.raised_at, a.created_at FROM risk.alerts a JOIN risk.signals s ON s.id = a.signal_id \
             WHERE a.id = ANY($1) ORDER BY a.created_at, a.id",
        )
        .bind::<diesel::sql_types::Array<SqlUuid>, _>(&ids)
        .load(conn)
        .await?;
        let (idempotency_key, body) = if rows.iter().all(|r| r.digest) {
            let window = domain::risk::digest_window(rows[0].created_at);
            let key = format!("digest:{tenant}:{csm}:{}", window.start.timestamp());
            (
                key,
                serde_json::json!({
                    "type": "alert.digest",
                    "tenant_id": tenant,
                    "csm_user_id": csm,
                    "window": { "start": window.start, "end": window.end },
                    "alerts": alerts,
                }),
            )
        } else {
            let alert = alerts
                .as_slice()
                .first()
                .ok_or_else(|| anyhow::anyhow!("alert vanished"))?;
            (
                alert.alert_id.to_string(),
                serde_json::json!({
                    "type": "alert.created",
                    "tenant_id": tenant,
                    "alert": alert,
                }),
            )
        };
        let body = serde_json::to_vec(&body)?;
        let timestamp = Utc::now().timestamp();
        let signature = domain::webhook_signature::header_value(&secret, timestamp, &body);
        let response = self
            .http
            .post(&endpoint.url)
            .timeout(self.options.timeout)
            .header("content-type", "application/json")
            .header("cscx-signature", signature)
            .header("idempotency-key", idempotency_key)
            .body(body)
            .send()
            .await;
        Ok(match response {
            Ok(r) if r.status().is_success() => Outcome::Delivered(r.status().as_u16()),
            Ok(r) => Outcome::Retry {
                status: Some(r.status().as_u16()),
                error: format!("HTTP {}", r.status()),
            },
            Err(e) => Outcome::Retry {
                status: None,
                error: e.without_url().to_string(),
            },
        })
    }

    async fn record(
        &self,
        conn: &mut AsyncPgConnection,
        rows: &[Claimed],
        outcome: Outcome,
    ) -> diesel::QueryResult<()> {
        let ids: Vec<Uuid> = rows.iter().map(|r| r.alert_id).collect();
        let attempts = rows.iter().map(|r| r.attempts).max().unwrap_or(1);
        match outcome {
            Outcome::Delivered(status) => {
                diesel::sql_query(
                    "UPDATE risk.alert_deliveries SET status = 'delivered', delivered_at = now(), last_status = $2, \
                     last_error = NULL WHERE alert_id = ANY($1)",
                )
                .bind::<diesel::sql_types::Array<SqlUuid>, _>(&ids)
                .bind::<Integer, _>(i32::from(status))
                .execute(conn)
                .await?;
                for row in rows {
                    let seconds =
                        (Utc::now() - row.created_at).num_milliseconds().max(0) as f64 / 1000.0;
                    metrics::histogram!("risk_alert_delivery_seconds", "digest" => row.digest.to_string()).record(seconds);
                }
                metrics::counter!("risk_alert_deliveries_total", "outcome" => "delivered")
                    .increment(rows.len() as u64);
            }
            Outcome::Skipped(reason) => {
                diesel::sql_query(
                    "UPDATE risk.alert_deliveries SET status = 'skipped', last_error = $2 WHERE alert_id = ANY($1)",
                )
                .bind::<diesel::sql_types::Array<SqlUuid>, _>(&ids)
                .bind::<Text, _>(&reason)
                .execute(conn)
                .await?;
                metrics::counter!("risk_alert_deliveries_total", "outcome" => "skipped")
                    .increment(rows.len() as u64);
            }
            Outcome::Retry { status, error } => {
                let give_up = attempts >= self.options.max_attempts;
                let next = Utc::now()
                    + chrono::TimeDelta::from_std(backoff(self.options.retry_base, attempts))
                        .unwrap_or_default();
                diesel::sql_query(
                    "UPDATE risk.alert_deliveries SET status = CASE WHEN $5 THEN 'failed' ELSE 'pending' END, \
                     next_attempt_at = $2, last_status = $3, last_error = $4 WHERE alert_id = ANY($1)",
                )
                .bind::<diesel::sql_types::Array<SqlUuid>, _>(&ids)
                .bind::<Timestamptz, _>(next)
                .bind::<Nullable<Integer>, _>(status.map(i32::from))
                .bind::<Text, _>(&error.chars().take(500).collect::<String>())
                .bind::<Bool, _>(give_up)
                .execute(conn)
                .await?;
                let outcome = if give_up { "failed" } else { "retry" };
                tracing::warn!(attempts, error = %error, outcome, "alert webhook delivery did not succeed");
                metrics::counter!("risk_alert_deliveries_total", "outcome" => outcome)
                    .increment(rows.len() as u64);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps_at_an_hour() {
        let base = Duration::from_secs(5);
        assert_eq!(backoff(base, 1), Duration::from_secs(5));
        assert_eq!(backoff(base, 2), Duration::from_secs(10));
        assert_eq!(backoff(base, 4), Duration::from_secs(40));
        assert_eq!(backoff(base, 30), Duration::from_secs(3600));
        assert_eq!(backoff(base, 0), Duration::from_secs(5));
    }
}
