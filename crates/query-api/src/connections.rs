//! `POST /api/integrations/stripe/connect` (restricted key), `GET …/connections`,
//! `DELETE …/connections/{id}`: admins connect Stripe; keys are validated with one read call,
//! sealed with AES-256-GCM, never returned; every change and read is audit-logged. A stored
//! connection is handed to the sync worker with a backfill request.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods as _, OptionalExtension as _, QueryDsl as _};
use diesel_async::{AsyncConnection as _, RunQueryDsl as _};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    app::AppState,
    audit,
    auth::{Caller, Role},
    error::ApiError,
    schema::connections,
    stripe_keys::{self, KeyError, KeyKind},
};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/integrations/stripe/connect", web::post().to(connect))
        .route("/api/integrations/stripe/connections", web::get().to(list))
        .route(
            "/api/integrations/stripe/connections/{id}",
            web::delete().to(disconnect),
        );
}

/// One of `restricted_key` or `"oauth": true`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({ "restricted_key": "rk_test_…" }))]
pub struct ConnectRequest {
    /// A Stripe restricted key with read access (`rk_test_…` / `rk_live_…`).
    pub restricted_key: Option<String>,
    /// `true` starts Connect OAuth instead: the answer carries Stripe's authorize URL.
    pub oauth: Option<bool>,
}

/// A stored Stripe connection; the credential itself is never returned.
#[derive(Debug, Serialize, diesel::Queryable, utoipa::ToSchema)]
pub struct ConnectionView {
    pub id: Uuid,
    /// `restricted_key`, `secret_key` (dev/demo only) or `oauth`.
    pub kind: String,
    /// The Stripe account (`acct_…`).
    pub account_id: String,
    pub livemode: bool,
    /// Enough of the key to recognise it (`rk_test_…abcd`), or `oauth:acct_…`.
    pub secret_hint: String,
    /// `active` or `revoked`.
    pub status: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The tenant's connections, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConnectionList {
    pub data: Vec<ConnectionView>,
}

#[derive(diesel::Insertable)]
#[diesel(table_name = connections)]
pub(crate) struct NewConnection {
    pub(crate) id: Uuid,
    pub(crate) tenant_id: String,
    pub(crate) kind: String,
    pub(crate) account_id: String,
    pub(crate) livemode: bool,
    pub(crate) secret_hint: String,
    pub(crate) secret_sealed: Vec<u8>,
    pub(crate) secret_key_id: String,
    pub(crate) created_by: String,
}

fn key_error(e: KeyError) -> ApiError {
    match e {
        KeyError::Unreachable => ApiError::Unavailable,
        other => ApiError::BadRequest(other.to_string()),
    }
}

/// Associated data binding a sealed secret to its tenant and row (shared with the sync worker).
pub use platform::crypto::connection_context as sealing_context;

/// Connect Stripe
///
/// With `restricted_key`: checks the key's shape and mode, validates it with one read call to
/// Stripe, seals and stores it, and asks the sync worker for a backfill (201). With
/// `"oauth": true`: starts Connect OAuth and returns Stripe's authorize URL (200). Admins only.
#[utoipa::path(
    post,
    path = "/api/integrations/stripe/connect",
    operation_id = "connect_stripe",
    tag = "connections",
    request_body = ConnectRequest,
    responses(
        (status = 201, description = "The key was valid and is stored", body = ConnectionView),
        (status = 200, description = "Connect OAuth started: send the admin's browser to `authorize_url`", body = crate::oauth::OAuthStarted),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthenticated),
        (status = 403, response = crate::openapi::Forbidden),
        (status = 409, response = crate::openapi::Conflict),
        (status = 429, response = crate::openapi::RateLimited),
        (status = 503, response = crate::openapi::Unavailable),
    ),
    security(("bearer" = []))
)]
async fn connect(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<ConnectRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    let key = match (&body.restricted_key, body.oauth) {
        (Some(key), None | Some(false)) => key.trim().to_string(),
        (None, Some(true)) => return crate::oauth::start(&caller, &state).await,
        (Some(_), Some(true)) => {
            return Err(ApiError::BadRequest(
                "send either `restricted_key` or `oauth`, not both".into(),
            ))
        }
        (None, _) => {
            return Err(ApiError::BadRequest(
                "`restricted_key` is required (or `\"oauth\": true` for Connect OAuth)".into(),
            ))
        }
    };
    let shape = stripe_keys::shape(&key).map_err(key_error)?;
    if shape.kind == KeyKind::Secret {
        if !state.settings.allow_secret_keys {
            return Err(key_error(KeyError::SecretKeyRefused));
        }
        tracing::warn!(tenant = %caller.tenant, "accepting a full secret key (allow_secret_keys is on; dev/demo only)");
    }
    if shape.livemode != state.settings.stripe_livemode {
        let name = |live: bool| if live { "live" } else { "test" };
        return Err(key_error(KeyError::ModeMismatch {
            found: name(shape.livemode),
            expected: name(state.settings.stripe_livemode),
        }));
    }
    let account = stripe_keys::fetch_account(&state.http, &state.settings.stripe_api_base, &key)
        .await
        .map_err(key_error)?;
    let secret = NewSecret {
        kind: shape.kind.as_str(),
        account_id: account.id,
        livemode: shape.livemode,
        hint: stripe_keys::hint(&key),
        secret: key,
    };
    Ok(HttpResponse::Created().json(store(&state, &caller, secret).await?))
}

/// A validated credential about to be stored.
pub struct NewSecret {
    pub kind: &'static str,
    pub account_id: String,
    pub livemode: bool,
    pub hint: String,
    pub secret: String,
}

/// Seals the credential and stores the connection with its audit record, in one transaction,
/// then asks the sync worker for a backfill (best effort: see [`crate::sync_jobs`]).
pub async fn store(
    state: &AppState,
    caller: &Caller,
    new: NewSecret,
) -> Result<ConnectionView, ApiError> {
    let id = Uuid::new_v4();
    let sealed = state
        .sealer
        .seal(
            new.secret.as_bytes(),
            &sealing_context(caller.tenant.as_str(), id),
        )
        .map_err(ApiError::internal)?;
    let row = NewConnection {
        id,
        tenant_id: caller.tenant.as_str().to_string(),
        kind: new.kind.to_string(),
        account_id: new.account_id,
        livemode: new.livemode,
        secret_hint: new.hint,
        secret_sealed: sealed.bytes,
        secret_key_id: sealed.key_id,
        created_by: caller.user.clone(),
    };
    let mut conn = state.conn().await?;
    let view = conn
        .transaction::<_, ApiError, _>(async |conn| {
            let inserted = diesel::insert_into(connections::table)
                .values(&row)
                .returning(view_columns())
                .get_result::<ConnectionView>(conn)
                .await;
            let view = match inserted {
                Ok(view) => view,
                Err(diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)) => {
                    return Err(ApiError::Conflict(format!("Stripe account {} is already connected", row.account_id)));
                }
                Err(e) => return Err(e.into()),
            };
            let detail = serde_json::json!({ "account_id": view.account_id, "kind": view.kind, "livemode": view.livemode, "hint": view.secret_hint });
            audit::record(conn, caller, "stripe.connect", Some(&view.id.to_string()), detail).await?;
            Ok(view)
        })
        .await?;
    tracing::info!(tenant = %caller.tenant, connection = %view.id, account = %view.account_id, kind = %view.kind, "Stripe connected");
    crate::sync_jobs::request_backfill(&state.bus, caller.tenant.as_str(), view.id).await;
    Ok(view)
}

type ViewColumns = (
    connections::id,
    connections::kind,
    connections::account_id,
    connections::livemode,
    connections::secret_hint,
    connections::status,
    connections::created_by,
    connections::created_at,
    connections::revoked_at,
);

fn view_columns() -> ViewColumns {
    (
        connections::id,
        connections::kind,
        connections::account_id,
        connections::livemode,
        connections::secret_hint,
        connections::status,
        connections::created_by,
        connections::created_at,
        connections::revoked_at,
    )
}

/// List Stripe connections
///
/// The tenant's connections (active and revoked), newest first. CSMs and admins. Audited.
#[utoipa::path(
    get,
    path = "/api/integrations/stripe/connections",
    operation_id = "list_stripe_connections",
    tag = "connections",
    responses(
        (status = 200, description = "The tenant's connections", body = ConnectionList),
        (status = 401, response = crate::openapi::Unauthenticated),
        (status = 403, response = crate::openapi::Forbidden),
        (status = 429, response = crate::openapi::RateLimited),
        (status = 503, response = crate::openapi::Unavailable),
    ),
    security(("bearer" = []))
)]
async fn list(caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    // A token with neither role (a service or a mis-minted token) sees nothing of the tenant.
    caller.require(Role::Csm)?;
    let mut conn = state.conn().await?;
    let rows: Vec<ConnectionView> = connections::table
        .filter(connections::tenant_id.eq(caller.tenant.as_str()))
        .order(connections::created_at.desc())
        .select(view_columns())
        .load(&mut conn)
        .await?;
    audit::record_read(
        &mut conn,
        &caller,
        "stripe.connections.read",
        None,
        serde_json::json!({ "count": rows.len() }),
    )
    .await?;
    Ok(HttpResponse::Ok().json(ConnectionList { data: rows }))
}

/// Disconnect Stripe
///
/// Revokes an active connection (a Connect grant is deauthorized at Stripe first). Admins only.
#[utoipa::path(
    delete,
    path = "/api/integrations/stripe/connections/{id}",
    operation_id = "disconnect_stripe",
    tag = "connections",
    params(("id" = Uuid, Path, description = "The connection's id")),
    responses(
        (status = 200, description = "The connection, now revoked", body = ConnectionView),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthenticated),
        (status = 403, response = crate::openapi::Forbidden),
        (status = 404, response = crate::openapi::NotFound),
        (status = 429, response = crate::openapi::RateLimited),
        (status = 503, response = crate::openapi::Unavailable),
    ),
    security(("bearer" = []))
)]
async fn disconnect(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    let id = Uuid::parse_str(&path)
        .map_err(|_| ApiError::BadRequest("connection id must be a UUID".into()))?;
    let mut conn = state.conn().await?;
    let current: Option<(String, String)> = connections::table
        .filter(connections::id.eq(id))
        .filter(connections::tenant_id.eq(caller.tenant.as_str()))
        .filter(connections::status.eq("active"))
        .select((connections::kind, connections::account_id))
        .first(&mut conn)
        .await
        .optional()?;
    let (kind, account_id) = current.ok_or(ApiError::NotFound)?;
    if kind == "oauth" {
        // Revoke our access at Stripe first; if Stripe cannot be reached nothing changes here.
        crate::oauth::deauthorize(&state, &account_id).await?;
    }
    let view = conn
        .transaction::<_, ApiError, _>(async |conn| {
            let view: ConnectionView = diesel::update(
                connections::table
                    .filter(connections::id.eq(id))
                    .filter(connections::tenant_id.eq(caller.tenant.as_str()))
                    .filter(connections::status.eq("active")),
            )
            .set((
                connections::status.eq("revoked"),
                connections::revoked_at.eq(diesel::dsl::now),
            ))
            .returning(view_columns())
            .get_result(conn)
            .await
            .map_err(|e| match e {
                diesel::result::Error::NotFound => ApiError::NotFound,
                other => other.into(),
            })?;
            audit::record(
                conn,
                &caller,
                "stripe.disconnect",
                Some(&id.to_string()),
                serde_json::json!({ "account_id": view.account_id }),
            )
            .await?;
            Ok(view)
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Re-seals every stored secret with the current master key (`billingctl rotate-key`), row by
/// row in short transactions; safe to re-run after an interruption. Returns rows re-sealed.
pub async fn reseal_all(
    pool: &platform::db::PgPool,
    sealer: &crate::crypto::Sealer,
) -> anyhow::Result<usize> {
    let mut conn = pool.get().await?;
    let stale: Vec<(Uuid, String)> = connections::table
        .filter(connections::secret_key_id.ne(sealer.current_key_id()))
        .select((connections::id, connections::tenant_id))
        .load(&mut conn)
        .await?;
    let mut done = 0;
    for (id, tenant) in stale {
        conn.transaction::<_, anyhow::Error, _>(async |conn| {
            let (bytes, key_id): (Vec<u8>, String) = connections::table
                .filter(connections::id.eq(id))
                .select((connections::secret_sealed, connections::secret_key_id))
                .for_update()
                .get_result(conn)
                .await?;
            let context = sealing_context(&tenant, id);
            let resealed = sealer.reseal(&crate::crypto::Sealed { key_id, bytes }, &context)?;
            diesel::update(connections::table.filter(connections::id.eq(id)))
                .set((
                    connections::secret_sealed.eq(resealed.bytes),
                    connections::secret_key_id.eq(resealed.key_id),
                ))
                .execute(conn)
                .await?;
            Ok(())
        })
        .await?;
        done += 1;
    }
    Ok(done)
}
