//! `GET /api/stripe/signals/{customerId}`: the account's risk signals (the risk engine's
//! `risk.account_signals`), open ones by default, newest first, with their evidence. Filters:
//! `status` = `open` (default), `resolved` or `all`; `kind` (comma-separated); pages of
//! `limit` (1–200, default 50) with an opaque `starting_after` cursor.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, BigInt, Jsonb, Nullable, Text, Timestamptz};
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use platform::prepared_sql::prepared_sql;
use serde::{Deserialize, Serialize};

use super::{
    cursor::{Cursor, Page},
    params, scope,
};
use crate::{
    app::AppState,
    auth::{Caller, Role},
    error::ApiError,
};

/// A risk signal the risk engine raised on the account.
#[derive(Debug, Clone, Serialize, QueryableByName, utoipa::ToSchema)]
pub struct SignalView {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub signal_id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    pub kind: String,
    /// low, medium, high, critical.
    #[diesel(sql_type = Text)]
    pub severity: String,
    #[diesel(sql_type = Text)]
    pub summary: String,
    #[diesel(sql_type = Text)]
    pub stripe_customer_id: String,
    /// Amounts, attempt numbers, failure codes, dates behind the signal (tagged by `type`:
    /// `invoice`, `subscription`, `card`, `dispute`).
    #[diesel(sql_type = Jsonb)]
    #[schema(value_type = Object)]
    pub evidence: serde_json::Value,
    /// The Stripe objects involved (invoice, subscription, payment method ids).
    #[diesel(sql_type = Array<Text>)]
    pub objects: Vec<String>,
    /// When Stripe saw the cause.
    #[diesel(sql_type = Timestamptz)]
    pub occurred_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub raised_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub updated_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub resolved_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    pub resolution: Option<String>,
}

pub const SIGNAL_COLUMNS: &str =
    "signal_id, kind, severity, summary, stripe_customer_id, evidence, \
     objects, occurred_at, raised_at, updated_at, resolved_at, resolution";

/// The account's open signals, most severe first (for the account summary).
pub async fn open_for_account(
    conn: &mut AsyncPgConnection,
    tenant: &str,
    account_id: &str,
) -> diesel::QueryResult<Vec<SignalView>> {
    prepared_sql(format!(
        "SELECT {SIGNAL_COLUMNS} FROM risk.account_signals \
         WHERE tenant_id = $1 AND account_id = $2 AND resolved_at IS NULL \
         ORDER BY CASE severity WHEN 'critical' THEN 4 WHEN 'high' THEN 3 WHEN 'medium' THEN 2 ELSE 1 END DESC, \
                  raised_at DESC, signal_id"
    ))
    .bind::<Text, _>(tenant)
    .bind::<Text, _>(account_id)
    .load(conn)
    .await
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SignalQuery {
    /// `open` (default), `resolved` or `all`.
    pub status: Option<String>,
    /// Signal kinds, comma-separated (`payment_failed,card_expiring`).
    pub kind: Option<String>,
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub starting_after: Option<String>,
}

/// Account risk signals
///
/// The account's risk signals, open ones by default, newest first, with their evidence;
/// filtered by status and kind, in pages with an opaque cursor. CSM role. Audited.
#[utoipa::path(
    get,
    path = "/api/stripe/signals/{customer_id}",
    operation_id = "list_signals",
    tag = "billing",
    params(("customer_id" = String, Path, description = "The CSCX account id (1–128 characters)"), SignalQuery),
    responses(
        (status = 200, description = "One page of signals", body = Page<SignalView>),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthenticated),
        (status = 403, response = crate::openapi::Forbidden),
        (status = 404, response = crate::openapi::NotFound),
        (status = 429, response = crate::openapi::RateLimited),
        (status = 503, response = crate::openapi::Unavailable),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<SignalQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Csm)?;
    let (open, resolved) = match query.status.as_deref() {
        None | Some("") | Some("open") => (true, false),
        Some("resolved") => (false, true),
        Some("all") => (true, true),
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "status must be `open`, `resolved` or `all`, not `{other}`"
            )))
        }
    };
    let kinds = match query.kind.as_deref() {
        None => None,
        Some(raw) => Some(
            raw.split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(|k| {
                    k.parse::<domain::risk::SignalKind>()
                        .map(|kind| kind.as_str().to_owned())
                        .map_err(|e| ApiError::BadRequest(e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let limit = params::limit(query.limit, 50, 200)?;
    let after = query
        .starting_after
        .as_deref()
        .map(Cursor::decode)
        .transpose()?;
    let mut conn = state.conn().await?;
    let scope = scope::resolve(&mut conn, &caller, &path).await?;
    let rows: Vec<SignalView> = prepared_sql(format!(
        "SELECT {SIGNAL_COLUMNS} FROM risk.account_signals \
         WHERE tenant_id = $1 AND account_id = $2 \
           AND ((resolved_at IS NULL AND $3) OR (resolved_at IS NOT NULL AND $4)) \
           AND ($5::text[] IS NULL OR kind = ANY($5)) \
           AND ($6::timestamptz IS NULL OR (raised_at, signal_id::text) < ($6, $7)) \
         ORDER BY raised_at DESC, signal_id::text DESC LIMIT $8"
    ))
    .bind::<Text, _>(&scope.tenant_id)
    .bind::<Text, _>(&scope.account_id)
    .bind::<diesel::sql_types::Bool, _>(open)
    .bind::<diesel::sql_types::Bool, _>(resolved)
    .bind::<Nullable<Array<Text>>, _>(kinds.as_deref())
    .bind::<Nullable<Timestamptz>, _>(after.as_ref().map(|c| c.at))
    .bind::<Text, _>(after.as_ref().map(|c| c.id.as_str()).unwrap_or(""))
    .bind::<BigInt, _>(limit + 1)
    .load(&mut conn)
    .await?;
    let page = Page::cut(scope.account_id.clone(), rows, limit, |last| Cursor {
        at: last.raised_at,
        id: last.signal_id.to_string(),
    });
    super::audited(
        &mut conn,
        &caller,
        "billing.signals.read",
        &scope,
        serde_json::json!({ "returned": page.data.len() }),
    )
    .await?;
    Ok(HttpResponse::Ok().json(page))
}
