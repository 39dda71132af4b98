//! Stripe Connect OAuth (read-only): an admin starts the flow and gets Stripe's authorize URL
//! with an unguessable, single-use, short-lived `state` bound to their tenant; Stripe sends the
//! browser back to `GET /api/integrations/stripe/callback` with `code` and `state`; we burn the
//! state, exchange the code at `/oauth/token`, and store the grant sealed like any key.

use actix_web::{web, HttpResponse};
use chrono::Utc;
use diesel::{ExpressionMethods as _, OptionalExtension as _, QueryDsl as _};
use diesel_async::{AsyncConnection as _, RunQueryDsl as _};
use ring::{
    digest,
    rand::{SecureRandom as _, SystemRandom},
};
use serde::{Deserialize, Serialize};

use crate::{
    app::AppState,
    auth::{Caller, Role},
    error::ApiError,
    schema::oauth_states,
};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/integrations/stripe/callback", web::get().to(callback));
}

fn state_hash(state: &str) -> String {
    hex::encode(digest::digest(&digest::SHA256, state.as_bytes()).as_ref())
}

fn configured(state: &AppState) -> Result<(&str, &str), ApiError> {
    let client_id = state.settings.connect_client_id.as_str();
    match (client_id.is_empty(), state.settings.platform_secret_key.as_deref()) {
        (false, Some(secret)) => Ok((client_id, secret)),
        _ => Err(ApiError::BadRequest(
            "Connect OAuth is not configured on this installation (connect_client_id and STRIPE_SECRET_KEY); connect with a restricted key instead".into(),
        )),
    }
}

/// The answer to `POST …/connect` with `"oauth": true`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OAuthStarted {
    /// Stripe's authorize page, with a single-use `state`.
    pub authorize_url: String,
    /// When the `state` stops being accepted.
    pub expires_at: chrono::DateTime<Utc>,
}

/// Starts the flow: stores the state's hash and returns Stripe's authorize URL.
pub async fn start(caller: &Caller, state: &AppState) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    let (client_id, _) = configured(state)?;
    let mut raw = [0u8; 32];
    SystemRandom::new()
        .fill(&mut raw)
        .map_err(|_| ApiError::Unavailable)?;
    let oauth_state = hex::encode(raw);
    let expires_at =
        Utc::now() + chrono::Duration::seconds(state.settings.oauth_state_ttl_secs.max(1));
    let mut conn = state.conn().await?;
    diesel::insert_into(oauth_states::table)
        .values((
            oauth_states::state_hash.eq(state_hash(&oauth_state)),
            oauth_states::tenant_id.eq(caller.tenant.as_str()),
            oauth_states::user_id.eq(&caller.user),
            oauth_states::expires_at.eq(expires_at),
        ))
        .execute(&mut conn)
        .await?;
    crate::audit::record(
        &mut conn,
        caller,
        "stripe.oauth.start",
        None,
        serde_json::json!({}),
    )
    .await?;
    let mut url = url::Url::parse(&format!(
        "{}/oauth/authorize",
        state.settings.stripe_connect_base.trim_end_matches('/')
    ))
    .map_err(ApiError::internal)?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("scope", "read_only")
        .append_pair("state", &oauth_state)
        .append_pair("redirect_uri", &state.settings.oauth_redirect_url);
    Ok(HttpResponse::Ok().json(OAuthStarted {
        authorize_url: url.into(),
        expires_at,
    }))
}

/// What Stripe appends to the redirect URL.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    /// The authorization code to exchange (on success).
    code: Option<String>,
    /// The single-use state this API issued (64 hex characters).
    state: Option<String>,
    /// Set when the admin denied access (e.g. `access_denied`).
    error: Option<String>,
    error_description: Option<String>,
}

#[derive(Debug, Deserialize)]
struct TokenResponse {
    access_token: String,
    stripe_user_id: String,
    #[serde(default)]
    livemode: bool,
    #[serde(default)]
    scope: String,
}

/// Who started the flow, recovered from a valid state.
struct Starter {
    tenant_id: String,
    user_id: String,
}

/// Connect OAuth callback
///
/// Where Stripe sends the admin's browser back. Authenticated by the single-use `state` (no
/// bearer token): burns it, exchanges `code` for a read-only grant and stores it sealed.
#[utoipa::path(
    get,
    path = "/api/integrations/stripe/callback",
    operation_id = "stripe_oauth_callback",
    tag = "connections",
    params(CallbackQuery),
    responses(
        (status = 201, description = "The grant is stored", body = crate::connections::ConnectionView),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 409, response = crate::openapi::Conflict),
        (status = 503, response = crate::openapi::Unavailable),
    )
)]
async fn callback(
    state: web::Data<AppState>,
    query: web::Query<CallbackQuery>,
) -> Result<HttpResponse, ApiError> {
    let (_, secret_key) = configured(&state)?;
    let oauth_state = query
        .state
        .as_deref()
        .filter(|s| s.len() == 64)
        .ok_or_else(|| ApiError::BadRequest("missing or malformed state".into()))?;
    // Burn the state first: single use, even if the rest fails.
    let mut conn = state.conn().await?;
    let hash = state_hash(oauth_state);
    let starter = conn
        .transaction::<_, ApiError, _>(async |conn| {
            let row: Option<(String, String)> = oauth_states::table
                .filter(oauth_states::state_hash.eq(&hash))
                .filter(oauth_states::used_at.is_null())
                .filter(oauth_states::expires_at.gt(diesel::dsl::now))
                .select((oauth_states::tenant_id, oauth_states::user_id))
                .for_update()
                .first(conn)
                .await
                .optional()?;
            let (tenant_id, user_id) = row.ok_or_else(|| {
                ApiError::BadRequest(
                    "invalid, used or expired state; start the connection again".into(),
                )
            })?;
            diesel::update(oauth_states::table.filter(oauth_states::state_hash.eq(&hash)))
                .set(oauth_states::used_at.eq(diesel::dsl::now))
                .execute(conn)
                .await?;
            Ok(Starter { tenant_id, user_id })
        })
        .await?;
    let caller = Caller {
        tenant: domain::TenantId::parse(&starter.tenant_id).map_err(ApiError::internal)?,
        user: starter.user_id,
        roles: vec![Role::Admin],
    };
    if let Some(error) = &query.error {
        crate::audit::record(
            &mut conn,
            &caller,
            "stripe.oauth.denied",
            None,
            serde_json::json!({ "error": error }),
        )
        .await?;
        let why = query
            .error_description
            .clone()
            .unwrap_or_else(|| error.clone());
        return Err(ApiError::BadRequest(format!(
            "Stripe did not grant access: {why}"
        )));
    }
    let code = query
        .code
        .as_deref()
        .filter(|c| !c.is_empty() && c.len() <= 255)
        .ok_or_else(|| ApiError::BadRequest("missing code".into()))?;
    let token = exchange(&state, secret_key, code).await?;
    if token.scope != "read_only" {
        tracing::warn!(scope = %token.scope, "Connect grant is broader than read_only");
    }
    let connection = crate::connections::store(
        &state,
        &caller,
        crate::connections::NewSecret {
            kind: "oauth",
            account_id: token.stripe_user_id.clone(),
            livemode: token.livemode,
            hint: format!("oauth:{}", token.stripe_user_id),
            secret: token.access_token,
        },
    )
    .await?;
    Ok(HttpResponse::Created().json(connection))
}

async fn exchange(
    state: &AppState,
    secret_key: &str,
    code: &str,
) -> Result<TokenResponse, ApiError> {
    let url = format!(
        "{}/oauth/token",
        state.settings.stripe_connect_base.trim_end_matches('/')
    );
    let resp = state
        .http
        .post(&url)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("client_secret", secret_key),
        ])
        .send()
        .await
        .map_err(|error| {
            tracing::warn!(%url, error = %format!("{error:#}"), "Stripe Connect unreachable");
            ApiError::Unavailable
        })?;
    match resp.status().as_u16() {
        200 => resp
            .json::<TokenResponse>()
            .await
            .map_err(ApiError::internal),
        400 | 401 => Err(ApiError::BadRequest(
            "Stripe refused the authorization code (expired or already used)".into(),
        )),
        status => {
            tracing::warn!(%url, status, "unexpected answer from /oauth/token");
            Err(ApiError::Unavailable)
        }
    }
}

/// Revokes our access at Stripe (`/oauth/deauthorize`) before a Connect grant is disconnected.
pub async fn deauthorize(state: &AppState, account_id: &str) -> Result<(), ApiError> {
    let (client_id, secret_key) = configured(state)?;
    let url = format!(
        "{}/oauth/deauthorize",
        state.settings.stripe_connect_base.trim_end_matches('/')
    );
    let resp = state
        .http
        .post(&url)
        .bearer_auth(secret_key)
        .form(&[("client_id", client_id), ("stripe_user_id", account_id)])
        .send()
        .await
        .map_err(|_| ApiError::Unavailable)?;
    match resp.status().as_u16() {
        // 401 with invalid_client: the account already revoked us; nothing left to do.
        200 | 401 => Ok(()),
        _ => Err(ApiError::Unavailable),
    }
}
