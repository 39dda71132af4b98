//! `GET /api/stripe/customer/{customerId}`: the account's billing summary — every linked
//! Stripe customer with how it was matched (method, confidence, evidence) and its default
//! card (brand, last four, expiry only) and payment pattern, the billing health score with
//! its components, the open risk signals, MRR/ARR per currency and the disputes.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Bool, Double, Jsonb, Nullable, SmallInt, Text, Timestamptz};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl as _;
use platform::prepared_sql::prepared_sql;
use serde::Serialize;

use super::{disputes, scope, scoped, signals};
use crate::{
    app::AppState,
    auth::{Caller, Role},
    error::ApiError,
};

#[derive(QueryableByName)]
struct LinkedRow {
    #[diesel(sql_type = Text)]
    stripe_customer_id: String,
    #[diesel(sql_type = Text)]
    stripe_account_id: String,
    #[diesel(sql_type = Nullable<Text>)]
    email: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    name: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    currency: Option<String>,
    #[diesel(sql_type = Nullable<Bool>)]
    delinquent: Option<bool>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    created_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    deleted_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Bool)]
    synced: bool,
    #[diesel(sql_type = Text)]
    link_status: String,
    #[diesel(sql_type = Nullable<Text>)]
    method: Option<String>,
    #[diesel(sql_type = Double)]
    confidence: f64,
    #[diesel(sql_type = Jsonb)]
    evidence: serde_json::Value,
    #[diesel(sql_type = Text)]
    decided_by: String,
    #[diesel(sql_type = Timestamptz)]
    decided_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Text>)]
    card_brand: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    card_last4: Option<String>,
    #[diesel(sql_type = Nullable<SmallInt>)]
    card_exp_month: Option<i16>,
    #[diesel(sql_type = Nullable<SmallInt>)]
    card_exp_year: Option<i16>,
    #[diesel(sql_type = Nullable<Double>)]
    on_time_rate: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    avg_days_late: Option<f64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    paid_invoices: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    failed_attempts_30d: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    failed_attempts_90d: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    open_invoices: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    dunning_stage: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Match {
    /// `linked` (by a rule) or `manual` (a person decided).
    pub status: String,
    /// metadata_id, email_domain, company_name, manual.
    pub method: Option<String>,
    pub confidence: f64,
    /// Why the matcher linked it (human-readable reasons, strongest first).
    #[schema(value_type = Vec<Value>)]
    pub evidence: serde_json::Value,
    pub decided_by: String,
    pub decided_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Card {
    pub brand: Option<String>,
    pub last4: Option<String>,
    pub exp_month: Option<i16>,
    pub exp_year: Option<i16>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PaymentPattern {
    /// Share of paid invoices paid by their due date; none before the first.
    pub on_time_rate: Option<f64>,
    pub avg_days_late: Option<f64>,
    pub paid_invoices: i64,
    pub failed_attempts_30d: i64,
    pub failed_attempts_90d: i64,
    pub open_invoices: i64,
    /// none, retrying, final_attempts, exhausted, uncollectible.
    pub dunning_stage: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LinkedCustomer {
    pub stripe_customer_id: String,
    pub stripe_account_id: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub currency: Option<String>,
    pub delinquent: Option<bool>,
    pub created_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    /// False while the sync worker has not stored the customer yet.
    pub synced: bool,
    #[serde(rename = "match")]
    pub matched: Match,
    pub default_card: Option<Card>,
    pub payment_pattern: Option<PaymentPattern>,
}

impl From<LinkedRow> for LinkedCustomer {
    fn from(r: LinkedRow) -> Self {
        let default_card = (r.card_last4.is_some() || r.card_brand.is_some()).then_some(Card {
            brand: r.card_brand,
            last4: r.card_last4,
            exp_month: r.card_exp_month,
            exp_year: r.card_exp_year,
        });
        let payment_pattern = r.dunning_stage.map(|dunning_stage| PaymentPattern {
            on_time_rate: r.on_time_rate,
            avg_days_late: r.avg_days_late,
            paid_invoices: r.paid_invoices.unwrap_or(0),
            failed_attempts_30d: r.failed_attempts_30d.unwrap_or(0),
            failed_attempts_90d: r.failed_attempts_90d.unwrap_or(0),
            open_invoices: r.open_invoices.unwrap_or(0),
            dunning_stage,
        });
        Self {
            stripe_customer_id: r.stripe_customer_id,
            stripe_account_id: r.stripe_account_id,
            email: r.email,
            name: r.name,
            currency: r.currency,
            delinquent: r.delinquent,
            created_at: r.created_at,
            deleted_at: r.deleted_at,
            synced: r.synced,
            matched: Match {
                status: r.link_status,
                method: r.method,
                confidence: r.confidence,
                evidence: r.evidence,
                decided_by: r.decided_by,
                decided_at: r.decided_at,
            },
            default_card,
            payment_pattern,
        }
    }
}

#[derive(Debug, Serialize, QueryableByName, utoipa::ToSchema)]
pub struct Health {
    #[diesel(sql_type = SmallInt)]
    pub score: i16,
    /// healthy, watch, at_risk, critical.
    #[diesel(sql_type = Text)]
    pub band: String,
    /// Which signals cost how many points, after decay.
    #[diesel(sql_type = Jsonb)]
    #[schema(value_type = Vec<Object>)]
    pub components: serde_json::Value,
    #[diesel(sql_type = Timestamptz)]
    pub computed_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, QueryableByName, utoipa::ToSchema)]
pub struct CurrencyMrr {
    #[diesel(sql_type = Text)]
    pub currency: String,
    #[diesel(sql_type = BigInt)]
    pub mrr_cents: i64,
    #[diesel(sql_type = BigInt)]
    pub arr_cents: i64,
    #[diesel(sql_type = BigInt)]
    pub subscriptions: i64,
    /// Subscriptions whose MRR could not be computed (e.g. metered prices); not in the sum.
    #[diesel(sql_type = BigInt)]
    pub subscriptions_without_mrr: i64,
}

/// MRR/ARR per currency over the scope's subscriptions (never summed across currencies).
pub async fn mrr_by_currency(
    conn: &mut diesel_async::AsyncPgConnection,
    scope: &scope::AccountScope,
) -> diesel::QueryResult<Vec<CurrencyMrr>> {
    scoped(
        format!(
            "SELECT currency, sum(mrr_cents)::BIGINT AS mrr_cents, (sum(mrr_cents) * 12)::BIGINT AS arr_cents, \
                    count(*) FILTER (WHERE mrr_cents > 0) AS subscriptions, \
                    count(*) FILTER (WHERE mrr_error IS NOT NULL) AS subscriptions_without_mrr \
             FROM billing.subscription_overview WHERE tenant_id = $1 AND {} \
             GROUP BY currency ORDER BY currency",
            scope::PAIRS
        ),
        scope,
    )
    .load(conn)
    .await
}

/// The account's billing health score, once the risk engine computed one.
pub async fn health(
    conn: &mut diesel_async::AsyncPgConnection,
    scope: &scope::AccountScope,
) -> diesel::QueryResult<Option<Health>> {
    let rows: Vec<Health> = prepared_sql(
        "SELECT score, band, components, computed_at FROM risk.account_health \
         WHERE tenant_id = $1 AND account_id = $2",
    )
    .bind::<Text, _>(&scope.tenant_id)
    .bind::<Text, _>(&scope.account_id)
    .load(conn)
    .await?;
    Ok(rows.into_iter().next())
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CustomerSummary {
    pub account: scope::AccountScope,
    pub stripe_customers: Vec<LinkedCustomer>,
    pub billing_health: Option<Health>,
    pub open_signals: Vec<signals::SignalView>,
    pub mrr: Vec<CurrencyMrr>,
    /// Open disputes, then those closed in the last 180 days.
    pub disputes: Vec<disputes::DisputeView>,
}

/// Account billing summary
///
/// Every Stripe customer linked to the CSCX account, with how it was matched, its default card
/// (brand, last four, expiry) and payment pattern; the billing health score, the open risk
/// signals, MRR/ARR per currency and the disputes (open ones, and those closed in the last
/// 180 days). CSM role. Audited.
#[utoipa::path(
    get,
    path = "/api/stripe/customer/{customer_id}",
    operation_id = "get_customer",
    tag = "billing",
    params(("customer_id" = String, Path, description = "The CSCX account id (1–128 characters)")),
    responses(
        (status = 200, description = "The account's billing summary", body = CustomerSummary),
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
    let linked: Vec<LinkedRow> = prepared_sql(
        "SELECT l.stripe_customer_id, l.stripe_account_id, COALESCE(p.email, l.email) AS email, \
                COALESCE(p.name, l.customer_name) AS name, p.currency, p.delinquent, p.created_at, p.deleted_at, \
                p.stripe_customer_id IS NOT NULL AS synced, l.status AS link_status, l.method, l.confidence, \
                l.evidence, l.decided_by, l.decided_at, p.card_brand, p.card_last4::text AS card_last4, \
                p.card_exp_month, p.card_exp_year, pp.on_time_rate, pp.avg_days_late, pp.paid_invoices, \
                pp.failed_attempts_30d, pp.failed_attempts_90d, pp.open_invoices, pp.dunning_stage \
         FROM matching.customer_links l \
         LEFT JOIN billing.customer_profiles p ON p.tenant_id = l.tenant_id \
              AND p.stripe_account_id = l.stripe_account_id AND p.stripe_customer_id = l.stripe_customer_id \
         LEFT JOIN billing.payment_patterns pp ON pp.tenant_id = l.tenant_id \
              AND pp.account_id = l.stripe_account_id AND pp.stripe_customer_id = l.stripe_customer_id \
         WHERE l.tenant_id = $1 AND l.account_id = $2 AND l.status IN ('linked', 'manual') \
         ORDER BY l.stripe_account_id, l.stripe_customer_id",
    )
    .bind::<Text, _>(&scope.tenant_id)
    .bind::<Text, _>(&scope.account_id)
    .load(&mut conn)
    .await?;
    let billing_health = health(&mut conn, &scope).await?;
    let open_signals =
        signals::open_for_account(&mut conn, &scope.tenant_id, &scope.account_id).await?;
    let mrr = mrr_by_currency(&mut conn, &scope).await?;
    let disputes = disputes::recent(&mut conn, &scope).await?;
    super::audited(
        &mut conn,
        &caller,
        "billing.customer.read",
        &scope,
        serde_json::json!({}),
    )
    .await?;
    Ok(HttpResponse::Ok().json(CustomerSummary {
        account: scope,
        stripe_customers: linked.into_iter().map(LinkedCustomer::from).collect(),
        billing_health,
        open_signals,
        mrr,
        disputes,
    }))
}
