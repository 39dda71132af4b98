//! `GET /api/stripe/mrr/{customerId}`: the account's MRR and ARR per currency (never
//! converted), per live subscription, and its movement over the last 12 calendar months
//! (month-end MRR with new, expansion, contraction, churn and reactivation), built by
//! [`domain::mrr_history::monthly_series`] from the sync worker's change history.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Bool, Nullable, Text, Timestamptz};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl as _;
use domain::money::Currency;
use domain::movement::MovementKind;
use domain::mrr_history::{monthly_series, series_start, MrrSeries, RecordedChange};
use serde::Serialize;

use super::{customer, scope, scoped};
use crate::{
    app::AppState,
    auth::{Caller, Role},
    error::ApiError,
};

const MONTHS: u32 = 12;

#[derive(Debug, Serialize, QueryableByName, utoipa::ToSchema)]
pub struct SubscriptionMrr {
    #[diesel(sql_type = Text)]
    pub stripe_subscription_id: String,
    #[diesel(sql_type = Text)]
    pub stripe_customer_id: String,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub plan_name: Option<String>,
    #[diesel(sql_type = Text)]
    pub currency: String,
    #[diesel(sql_type = BigInt)]
    pub mrr_cents: i64,
    #[diesel(sql_type = BigInt)]
    pub arr_cents: i64,
    #[diesel(sql_type = Nullable<Text>)]
    pub mrr_error: Option<String>,
}

#[derive(QueryableByName)]
struct ChangeRow {
    #[diesel(sql_type = Text)]
    stripe_account_id: String,
    #[diesel(sql_type = Text)]
    stripe_subscription_id: String,
    #[diesel(sql_type = Timestamptz)]
    changed_at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    currency: String,
    #[diesel(sql_type = BigInt)]
    mrr_before_cents: i64,
    #[diesel(sql_type = BigInt)]
    mrr_after_cents: i64,
    #[diesel(sql_type = Text)]
    movement: String,
    #[diesel(sql_type = Bool)]
    baseline: bool,
}

impl TryFrom<ChangeRow> for RecordedChange {
    type Error = ApiError;
    fn try_from(r: ChangeRow) -> Result<Self, ApiError> {
        Ok(Self {
            // Stripe ids are global, but two connected accounts never share a key here.
            subscription_id: format!("{}/{}", r.stripe_account_id, r.stripe_subscription_id),
            at: r.changed_at,
            currency: Currency::parse(&r.currency).map_err(ApiError::internal)?,
            mrr_before: r.mrr_before_cents,
            mrr_after: r.mrr_after_cents,
            movement: r
                .movement
                .parse::<MovementKind>()
                .map_err(ApiError::internal)?,
            baseline: r.baseline,
        })
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MrrReport {
    pub account_id: String,
    /// Now, per currency.
    pub current: Vec<customer::CurrencyMrr>,
    /// Live subscriptions (not canceled or expired).
    pub subscriptions: Vec<SubscriptionMrr>,
    /// The last 12 months, oldest first; months before the first recorded change are left
    /// out (`history_since`).
    pub movement: MrrSeries,
}

/// Account MRR
///
/// The account's MRR and ARR per currency (never converted), per live subscription, and its
/// movement over the last 12 calendar months (new, expansion, contraction, churn,
/// reactivation). CSM role. Audited.
#[utoipa::path(
    get,
    path = "/api/stripe/mrr/{customer_id}",
    operation_id = "get_mrr",
    tag = "billing",
    params(("customer_id" = String, Path, description = "The CSCX account id (1–128 characters)")),
    responses(
        (status = 200, description = "The account's MRR report", body = MrrReport),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthenticated),
        (status = 403, response = crate::openapi::Forbidden),
        (status = 404, response = crate::openapi::NotFound),
        (status = 429, response = crate::openapi::RateLimited),
        (status = 503, response = crate::openapi::Unavailable),
    ),
    security(("bearer" = []))
)]
pub async fn show(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Csm)?;
    let mut conn = state.conn().await?;
    let scope = scope::resolve(&mut conn, &caller, &path).await?;
    let report = load(&mut conn, &scope).await?;
    super::audited(
        &mut conn,
        &caller,
        "billing.mrr.read",
        &scope,
        serde_json::json!({}),
    )
    .await?;
    Ok(HttpResponse::Ok().json(report))
}

/// The account's MRR report (no audit entry: the caller writes one).
pub async fn load(
    conn: &mut diesel_async::AsyncPgConnection,
    scope: &scope::AccountScope,
) -> Result<MrrReport, ApiError> {
    let current = customer::mrr_by_currency(conn, scope).await?;
    let subscriptions: Vec<SubscriptionMrr> = scoped(
        format!(
            "SELECT stripe_subscription_id, stripe_customer_id, status, plan_name, currency, mrr_cents, \
                    mrr_cents * 12 AS arr_cents, mrr_error \
             FROM billing.subscription_overview \
             WHERE tenant_id = $1 AND {} AND status NOT IN ('canceled', 'incomplete_expired') \
             ORDER BY currency, mrr_cents DESC, stripe_subscription_id",
            scope::PAIRS
        ),
        scope,
    )
    .load(conn)
    .await?;
    let now = Utc::now();
    let start = series_start(now, MONTHS);
    // The window's changes plus each subscription's last level before it.
    let changes: Vec<ChangeRow> = scoped(
        format!(
            "SELECT stripe_account_id, stripe_subscription_id, changed_at, currency, mrr_before_cents, \
                    mrr_after_cents, movement, baseline \
             FROM billing.subscription_history WHERE tenant_id = $1 AND {pairs} AND changed_at >= $4 \
             UNION ALL \
             (SELECT DISTINCT ON (stripe_account_id, stripe_subscription_id) stripe_account_id, \
                     stripe_subscription_id, changed_at, currency, mrr_before_cents, mrr_after_cents, movement, \
                     true AS baseline \
              FROM billing.subscription_history WHERE tenant_id = $1 AND {pairs} AND changed_at < $4 \
              ORDER BY stripe_account_id, stripe_subscription_id, changed_at DESC)",
            pairs = scope::PAIRS
        ),
        scope,
    )
    .bind::<Timestamptz, _>(start)
    .load(conn)
    .await?;
    let changes = changes
        .into_iter()
        .map(RecordedChange::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    let movement = monthly_series(&changes, now, MONTHS);
    Ok(MrrReport {
        account_id: scope.account_id.clone(),
        current,
        subscriptions,
        movement,
    })
}
