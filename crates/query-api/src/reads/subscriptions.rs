//! `GET /api/stripe/subscriptions/{customerId}`: every subscription of the account's linked
//! Stripe customers — status, plan, items (price, product, quantity/seats, interval), current
//! period, cancel-at-period-end, MRR — with its change history (newest first, the latest 50
//! per subscription). Canceled subscriptions stay listed: churn is part of the story.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Bool, Jsonb, Nullable, Text, Timestamptz};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl as _;
use serde::Serialize;

use super::{group_by, scope, scoped};
use crate::{
    app::AppState,
    auth::{Caller, Role},
    error::ApiError,
};

/// History entries returned per subscription.
const HISTORY_PER_SUBSCRIPTION: i64 = 50;

#[derive(Debug, Serialize, QueryableByName, utoipa::ToSchema)]
pub struct SubscriptionRow {
    #[diesel(sql_type = Text)]
    pub stripe_subscription_id: String,
    #[diesel(sql_type = Text)]
    pub stripe_customer_id: String,
    #[serde(skip)]
    #[diesel(sql_type = Text)]
    pub stripe_account_id: String,
    /// trialing, active, past_due, unpaid, canceled, incomplete, incomplete_expired, paused.
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub plan_name: Option<String>,
    /// Total quantity (seats) over the items.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub quantity: Option<i64>,
    #[diesel(sql_type = Text)]
    pub currency: String,
    #[diesel(sql_type = BigInt)]
    pub mrr_cents: i64,
    /// Why MRR could not be computed, when it could not.
    #[diesel(sql_type = Nullable<Text>)]
    pub mrr_error: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub current_period_start: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub current_period_end: Option<DateTime<Utc>>,
    #[diesel(sql_type = Bool)]
    pub cancel_at_period_end: bool,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub cancel_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub canceled_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub ended_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub trial_end: Option<DateTime<Utc>>,
    #[diesel(sql_type = Bool)]
    pub pause_collection: bool,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub created_at: Option<DateTime<Utc>>,
    /// Price, product (with name), quantity, unit amount, interval of each item.
    #[diesel(sql_type = Jsonb)]
    #[schema(value_type = Vec<Object>)]
    pub items: serde_json::Value,
}

/// One recorded change of a subscription.
#[derive(Debug, Serialize, QueryableByName, utoipa::ToSchema)]
#[schema(as = SubscriptionChange)]
pub struct ChangeRow {
    #[serde(skip)]
    #[diesel(sql_type = Text)]
    pub stripe_account_id: String,
    #[serde(skip)]
    #[diesel(sql_type = Text)]
    pub stripe_subscription_id: String,
    #[diesel(sql_type = Timestamptz)]
    pub changed_at: DateTime<Utc>,
    /// event, backfill, reconcile.
    #[diesel(sql_type = Text)]
    pub source: String,
    /// First seen by a backfill or reconciliation: a level, not revenue won or lost.
    #[diesel(sql_type = Bool)]
    pub baseline: bool,
    /// new, expansion, contraction, churn, reactivation, unchanged.
    #[diesel(sql_type = Text)]
    pub movement: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub status_before: Option<String>,
    #[diesel(sql_type = Text)]
    pub status_after: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub plan_before: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub plan_after: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub quantity_before: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub quantity_after: Option<i64>,
    #[diesel(sql_type = BigInt)]
    pub mrr_before_cents: i64,
    #[diesel(sql_type = BigInt)]
    pub mrr_after_cents: i64,
    #[diesel(sql_type = Text)]
    pub currency: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Subscription {
    #[serde(flatten)]
    pub subscription: SubscriptionRow,
    /// Newest first, at most 50.
    pub history: Vec<ChangeRow>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SubscriptionList {
    pub account_id: String,
    pub data: Vec<Subscription>,
}

/// The account's subscriptions: live ones first, then by start, newest first.
pub async fn rows(
    conn: &mut diesel_async::AsyncPgConnection,
    scope: &scope::AccountScope,
) -> diesel::QueryResult<Vec<SubscriptionRow>> {
    scoped(
        format!(
            "SELECT stripe_subscription_id, stripe_customer_id, stripe_account_id, status, plan_name, quantity, \
                    currency, mrr_cents, mrr_error, current_period_start, current_period_end, cancel_at_period_end, \
                    cancel_at, canceled_at, ended_at, trial_end, pause_collection, created_at, items \
             FROM billing.subscription_overview WHERE tenant_id = $1 AND {} \
             ORDER BY status IN ('canceled', 'incomplete_expired'), created_at DESC NULLS LAST, stripe_subscription_id",
            scope::PAIRS
        ),
        scope,
    )
    .load(conn)
    .await
}

/// Account subscriptions
///
/// Every subscription of the account's linked Stripe customers — status, plan, items, current
/// period, cancel-at-period-end, MRR — with its latest 50 changes. Canceled subscriptions stay
/// listed. CSM role. Audited.
#[utoipa::path(
    get,
    path = "/api/stripe/subscriptions/{customer_id}",
    operation_id = "list_subscriptions",
    tag = "billing",
    params(("customer_id" = String, Path, description = "The CSCX account id (1–128 characters)")),
    responses(
        (status = 200, description = "The account's subscriptions", body = SubscriptionList),
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
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Csm)?;
    let mut conn = state.conn().await?;
    let scope = scope::resolve(&mut conn, &caller, &path).await?;
    let subscriptions = rows(&mut conn, &scope).await?;
    let changes: Vec<ChangeRow> = scoped(
        format!(
            "SELECT stripe_account_id, stripe_subscription_id, changed_at, source, baseline, movement, status_before, \
                    status_after, plan_before, plan_after, quantity_before, quantity_after, mrr_before_cents, \
                    mrr_after_cents, currency \
             FROM (SELECT h.*, row_number() OVER (PARTITION BY stripe_account_id, stripe_subscription_id \
                                                  ORDER BY changed_at DESC) AS n \
                   FROM billing.subscription_history h WHERE tenant_id = $1 AND {}) ranked \
             WHERE n <= $4 ORDER BY changed_at DESC",
            scope::PAIRS
        ),
        &scope,
    )
    .bind::<BigInt, _>(HISTORY_PER_SUBSCRIPTION)
    .load(&mut conn)
    .await?;
    let mut history = group_by(changes, |c| {
        (
            c.stripe_account_id.clone(),
            c.stripe_subscription_id.clone(),
        )
    });
    let data: Vec<Subscription> = subscriptions
        .into_iter()
        .map(|subscription| Subscription {
            history: history
                .remove(&(
                    subscription.stripe_account_id.clone(),
                    subscription.stripe_subscription_id.clone(),
                ))
                .unwrap_or_default(),
            subscription,
        })
        .collect();
    super::audited(
        &mut conn,
        &caller,
        "billing.subscriptions.read",
        &scope,
        serde_json::json!({ "returned": data.len() }),
    )
    .await?;
    Ok(HttpResponse::Ok().json(SubscriptionList {
        account_id: scope.account_id,
        data,
    }))
}
