//! A tenant's outbound alert webhook (FR-5: "CSM receives alerts"): `PUT /api/alerts/webhook`
//! sets the HTTPS URL and mints a fresh signing secret, shown once; `GET` shows the URL and
//! the secret's hint; `DELETE` stops deliveries. The secret is sealed with AES-256-GCM; the
//! risk engine opens it (through `integration.alert_webhook_endpoints`) and signs every
//! delivery the way Stripe signs webhooks (`CSCX-Signature: t=…,v1=…`). Admins only; audited.

use actix_web::{web, HttpResponse};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use diesel::sql_types::{Bytea, Text, Timestamptz};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl as _;
use ring::rand::{SecureRandom as _, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::{
    app::AppState,
    audit,
    auth::{Caller, Role},
    error::ApiError,
};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/alerts/webhook", web::put().to(put))
        .route("/api/alerts/webhook", web::get().to(get))
        .route("/api/alerts/webhook", web::delete().to(delete));
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({ "url": "https://hooks.example.com/cscx" }))]
pub struct WebhookRequest {
    /// Absolute https URL without credentials, at most 2048 characters.
    pub url: String,
}

/// The webhook as stored: the URL and the hint of its secret.
#[derive(Debug, Serialize, QueryableByName, utoipa::ToSchema)]
pub struct WebhookView {
    #[diesel(sql_type = Text)]
    pub url: String,
    #[diesel(sql_type = Text)]
    pub secret_hint: String,
    #[diesel(sql_type = Text)]
    pub created_by: String,
    #[diesel(sql_type = Timestamptz)]
    pub updated_at: DateTime<Utc>,
}

/// The webhook just set, with its new signing secret: shown this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookCreated {
    pub url: String,
    /// `whsec_…`: verify each delivery's `CSCX-Signature` with it.
    pub secret: String,
    pub secret_hint: String,
    pub note: &'static str,
}

/// Checks the URL: absolute http(s) with a host, https unless allowed, no credentials.
pub fn check_url(raw: &str, allow_http: bool) -> Result<String, ApiError> {
    let url = url::Url::parse(raw.trim())
        .map_err(|e| ApiError::BadRequest(format!("url is not a valid URL: {e}")))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_http => {}
        "http" => return Err(ApiError::BadRequest("url must use https".into())),
        other => {
            return Err(ApiError::BadRequest(format!(
                "url scheme `{other}` is not http(s)"
            )))
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ApiError::BadRequest("url needs a host".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ApiError::BadRequest(
            "url must not carry credentials; the signature authenticates deliveries".into(),
        ));
    }
    if url.as_str().len() > 2048 {
        return Err(ApiError::BadRequest("url is too long".into()));
    }
    Ok(url.to_string())
}

fn new_secret() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| ApiError::internal(anyhow::anyhow!("no random numbers")))?;
    Ok(format!(
        "whsec_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// Set the alert webhook
///
/// Sets the tenant's alert webhook URL and mints a fresh signing secret, returned this once;
/// replaces any previous URL and secret. Admins only. Audited.
#[utoipa::path(
    put,
    path = "/api/alerts/webhook",
    operation_id = "set_alert_webhook",
    tag = "alerts",
    request_body = WebhookRequest,
    responses(
        (status = 200, description = "Set; store the secret now", body = WebhookCreated),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthenticated),
        (status = 403, response = crate::openapi::Forbidden),
        (status = 429, response = crate::openapi::RateLimited),
        (status = 503, response = crate::openapi::Unavailable),
    ),
    security(("bearer" = []))
)]
async fn put(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<WebhookRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    let url = check_url(&body.url, state.settings.allow_http_alert_webhooks)?;
    let secret = new_secret()?;
    let sealed = state
        .sealer
        .seal(
            secret.as_bytes(),
            &platform::crypto::alert_webhook_context(caller.tenant.as_str()),
        )
        .map_err(ApiError::internal)?;
    let hint = format!("whsec_…{}", &secret[secret.len() - 4..]);
    let mut conn = state.conn().await?;
    diesel::sql_query(
        "INSERT INTO integration.alert_webhooks (tenant_id, url, secret_sealed, secret_key_id, secret_hint, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id) DO UPDATE SET url = EXCLUDED.url, \
         secret_sealed = EXCLUDED.secret_sealed, secret_key_id = EXCLUDED.secret_key_id, \
         secret_hint = EXCLUDED.secret_hint, created_by = EXCLUDED.created_by, updated_at = now()",
    )
    .bind::<Text, _>(caller.tenant.as_str())
    .bind::<Text, _>(&url)
    .bind::<Bytea, _>(&sealed.bytes)
    .bind::<Text, _>(&sealed.key_id)
    .bind::<Text, _>(&hint)
    .bind::<Text, _>(&caller.user)
    .execute(&mut conn)
    .await?;
    audit::record(
        &mut conn,
        &caller,
        "alerts.webhook.set",
        Some(&url),
        serde_json::json!({ "secret_hint": hint }),
    )
    .await?;
    Ok(HttpResponse::Ok().json(WebhookCreated {
        url,
        secret,
        secret_hint: hint,
        note: "Store the secret now: it is not shown again. Verify each delivery's CSCX-Signature header (t=…,v1=HMAC-SHA256 of \"t.body\") as you would Stripe's.",
    }))
}

/// Show the alert webhook
///
/// The tenant's webhook URL and its secret's hint. Admins only. Audited.
#[utoipa::path(
    get,
    path = "/api/alerts/webhook",
    operation_id = "get_alert_webhook",
    tag = "alerts",
    responses(
        (status = 200, description = "The webhook", body = WebhookView),
        (status = 401, response = crate::openapi::Unauthenticated),
        (status = 403, response = crate::openapi::Forbidden),
        (status = 404, response = crate::openapi::NotFound),
        (status = 429, response = crate::openapi::RateLimited),
        (status = 503, response = crate::openapi::Unavailable),
    ),
    security(("bearer" = []))
)]
async fn get(caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    let mut conn = state.conn().await?;
    let mut rows: Vec<WebhookView> = diesel::sql_query(
        "SELECT url, secret_hint, created_by, updated_at FROM integration.alert_webhooks WHERE tenant_id = $1",
    )
    .bind::<Text, _>(caller.tenant.as_str())
    .load(&mut conn)
    .await?;
    audit::record_read(
        &mut conn,
        &caller,
        "alerts.webhook.read",
        None,
        serde_json::json!({}),
    )
    .await?;
    Ok(HttpResponse::Ok().json(rows.pop().ok_or(ApiError::NotFound)?))
}

/// Remove the alert webhook
///
/// Stops deliveries to the tenant's webhook. Admins only. Audited.
#[utoipa::path(
    delete,
    path = "/api/alerts/webhook",
    operation_id = "delete_alert_webhook",
    tag = "alerts",
    responses(
        (status = 204, description = "Removed"),
        (status = 401, response = crate::openapi::Unauthenticated),
        (status = 403, response = crate::openapi::Forbidden),
        (status = 404, response = crate::openapi::NotFound),
        (status = 429, response = crate::openapi::RateLimited),
        (status = 503, response = crate::openapi::Unavailable),
    ),
    security(("bearer" = []))
)]
async fn delete(caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    let mut conn = state.conn().await?;
    let n = diesel::sql_query("DELETE FROM integration.alert_webhooks WHERE tenant_id = $1")
        .bind::<Text, _>(caller.tenant.as_str())
        .execute(&mut conn)
        .await?;
    if n == 0 {
        return Err(ApiError::NotFound);
    }
    audit::record(
        &mut conn,
        &caller,
        "alerts.webhook.deleted",
        None,
        serde_json::json!({}),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(QueryableByName)]
struct SealedRow {
    #[diesel(sql_type = Text)]
    tenant_id: String,
    #[diesel(sql_type = Bytea)]
    secret_sealed: Vec<u8>,
    #[diesel(sql_type = Text)]
    secret_key_id: String,
}

/// Re-seals every webhook secret not sealed with the current master key (`billingctl
/// rotate-key`, beside the Stripe secrets); returns how many.
pub async fn reseal_all(
    pool: &platform::db::PgPool,
    sealer: &crate::crypto::Sealer,
) -> anyhow::Result<usize> {
    use diesel_async::AsyncConnection as _;
    let mut conn = pool.get().await?;
    let stale: Vec<SealedRow> = diesel::sql_query(
        "SELECT tenant_id, secret_sealed, secret_key_id FROM integration.alert_webhooks WHERE secret_key_id <> $1",
    )
    .bind::<Text, _>(sealer.current_key_id())
    .load(&mut conn)
    .await?;
    for row in &stale {
        conn.transaction::<_, anyhow::Error, _>(async |conn| {
            let sealed = crate::crypto::Sealed {
                key_id: row.secret_key_id.clone(),
                bytes: row.secret_sealed.clone(),
            };
            let resealed = sealer.reseal(
                &sealed,
                &platform::crypto::alert_webhook_context(&row.tenant_id),
            )?;
            diesel::sql_query(
                "UPDATE integration.alert_webhooks SET secret_sealed = $2, secret_key_id = $3 \
                 WHERE tenant_id = $1 AND secret_key_id = $4",
            )
            .bind::<Text, _>(&row.tenant_id)
            .bind::<Bytea, _>(&resealed.bytes)
            .bind::<Text, _>(&resealed.key_id)
            .bind::<Text, _>(&row.secret_key_id)
            .execute(conn)
            .await?;
            Ok(())
        })
        .await?;
    }
    Ok(stale.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        assert_eq!(
            check_url(" https://hooks.example.com/cscx?x=1 ", false).unwrap(),
            "https://hooks.example.com/cscx?x=1"
        );
        assert!(check_url("http://127.0.0.1:9/x", true).is_ok());
        for bad in [
            "http://hooks.example.com/x",
            "ftp://hooks.example.com/x",
            "https://user:pw@hooks.example.com/x",
            "not a url",
            "/relative",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_are_random_and_prefixed() {
        let (a, b) = (new_secret().unwrap(), new_secret().unwrap());
        assert!(a.starts_with("whsec_") && a.len() > 40);
        assert_ne!(a, b);
    }
}
