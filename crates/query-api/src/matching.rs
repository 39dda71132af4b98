//! Matching review (FR-2): which Stripe customers wait for a person, one customer's link and
//! the decisions behind it, and the decisions themselves. Reads go through the matcher's
//! views (`matching.customer_links`, `matching.cscx_accounts`,
//! `matching.manual_decision_log`); a decision is a `ManualDecisionRequested` message the
//! matcher applies (it owns the schema), answered 202 once the broker confirmed it.
//! Every read and decision is audit-logged; another tenant's customers are 404.

use std::time::Duration;

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use contracts::{v1, Contract as _};
use diesel::sql_types::{BigInt, Double, Jsonb, Nullable, Text, Timestamptz};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl as _;
use platform::amqp::Outgoing;
use prost::Message as _;
use serde::{Deserialize, Serialize};

use crate::{
    app::AppState,
    audit,
    auth::{Caller, Role},
    error::ApiError,
};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/matching/review", web::get().to(review))
        .route(
            "/api/matching/customers/{stripe_customer_id}",
            web::get().to(customer),
        )
        .route(
            "/api/matching/customers/{stripe_customer_id}/decision",
            web::post().to(decide),
        );
}

const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_PAGE: i64 = 200;

/// One Stripe customer's link as the matcher holds it.
#[derive(Debug, Serialize, QueryableByName, utoipa::ToSchema)]
pub struct LinkView {
    #[diesel(sql_type = Text)]
    pub stripe_customer_id: String,
    #[diesel(sql_type = Text)]
    pub stripe_account_id: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub email: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub customer_name: Option<String>,
    /// The CSCX account, when linked.
    #[diesel(sql_type = Nullable<Text>)]
    pub account_id: Option<String>,
    /// linked, manual, ambiguous, unmatched, rejected, deleted.
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub method: Option<String>,
    #[diesel(sql_type = Double)]
    pub confidence: f64,
    /// Why the matcher decided as it did (human-readable reasons, strongest first).
    #[diesel(sql_type = Jsonb)]
    #[schema(value_type = Vec<Value>)]
    pub evidence: serde_json::Value,
    /// Ambiguous: the accounts in contention with their scores.
    #[diesel(sql_type = Jsonb)]
    #[schema(value_type = Vec<Object>)]
    pub candidates: serde_json::Value,
    #[diesel(sql_type = Nullable<Text>)]
    pub reason: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub csm_user_id: Option<String>,
    #[diesel(sql_type = Text)]
    pub decided_by: String,
    #[diesel(sql_type = Timestamptz)]
    pub decided_at: DateTime<Utc>,
    #[diesel(sql_type = BigInt)]
    pub version: i64,
}

const LINK_COLUMNS: &str = "stripe_customer_id, stripe_account_id, email, customer_name, account_id, status, \
     method, confidence, evidence, candidates, reason, csm_user_id, decided_by, decided_at, version";

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReviewQuery {
    /// `ambiguous`, `unmatched` or both (default).
    pub status: Option<String>,
    /// Page size, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// Cursor: the last `stripe_customer_id` of the previous page.
    pub starting_after: Option<String>,
}

/// A page of customers waiting for review, by Stripe customer id.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ReviewPage)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub has_more: bool,
    /// Pass as `starting_after` for the next page.
    pub next_cursor: Option<String>,
}

/// Customers waiting for review
///
/// The Stripe customers the matcher could not link on its own (ambiguous or unmatched), by
/// Stripe customer id. CSM role. Audited.
#[utoipa::path(
    get,
    path = "/api/matching/review",
    operation_id = "matching_review",
    tag = "matching",
    params(ReviewQuery),
    responses(
        (status = 200, description = "One page of customers to review", body = Page<LinkView>),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthenticated),
        (status = 403, response = crate::openapi::Forbidden),
        (status = 429, response = crate::openapi::RateLimited),
        (status = 503, response = crate::openapi::Unavailable),
    ),
    security(("bearer" = []))
)]
async fn review(
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<ReviewQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Csm)?;
    let statuses: Vec<String> = match query.status.as_deref() {
        None | Some("") => vec!["ambiguous".into(), "unmatched".into()],
        Some(s @ ("ambiguous" | "unmatched")) => vec![s.into()],
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "status must be `ambiguous` or `unmatched`, not `{other}`"
            )))
        }
    };
    let limit = query.limit.unwrap_or(50);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    let mut conn = state.conn().await?;
    let mut rows: Vec<LinkView> = diesel::sql_query(format!(
        "SELECT {LINK_COLUMNS} FROM matching.customer_links \
         WHERE tenant_id = $1 AND status = ANY($2) AND stripe_customer_id > $3 \
         ORDER BY stripe_customer_id LIMIT $4"
    ))
    .bind::<Text, _>(caller.tenant.as_str())
    .bind::<diesel::sql_types::Array<Text>, _>(&statuses)
    .bind::<Text, _>(query.starting_after.as_deref().unwrap_or(""))
    .bind::<BigInt, _>(limit + 1)
    .load(&mut conn)
    .await?;
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    audit::record_read(
        &mut conn,
        &caller,
        "matching.review.read",
        None,
        serde_json::json!({ "statuses": statuses, "returned": rows.len() }),
    )
    .await?;
    Ok(HttpResponse::Ok().json(Page {
        next_cursor: has_more
            .then(|| rows.last().map(|r| r.stripe_customer_id.clone()))
            .flatten(),
        has_more,
        data: rows,
    }))
}

/// A manual decision about a customer's link and what became of it.
#[derive(Debug, Serialize, QueryableByName, utoipa::ToSchema)]
pub struct DecisionView {
    #[diesel(sql_type = Text)]
    pub request_id: String,
    #[diesel(sql_type = Text)]
    pub action: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub account_id: Option<String>,
    #[diesel(sql_type = Text)]
    pub actor: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub note: Option<String>,
    #[diesel(sql_type = Text)]
    pub outcome: String,
    #[diesel(sql_type = Timestamptz)]
    pub at: DateTime<Utc>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CustomerMatch {
    pub link: LinkView,
    /// Manual decisions about this customer, newest first.
    pub decisions: Vec<DecisionView>,
}

async fn load_link(
    conn: &mut diesel_async::AsyncPgConnection,
    tenant: &str,
    stripe_customer_id: &str,
) -> Result<Option<LinkView>, ApiError> {
    let mut rows: Vec<LinkView> = diesel::sql_query(format!(
        "SELECT {LINK_COLUMNS} FROM matching.customer_links WHERE tenant_id = $1 AND stripe_customer_id = $2"
    ))
    .bind::<Text, _>(tenant)
    .bind::<Text, _>(stripe_customer_id)
    .load(conn)
    .await?;
    Ok(rows.pop())
}

fn customer_id(raw: &str) -> Result<String, ApiError> {
    domain::StripeCustomerId::parse(raw)
        .map(|id| id.into_string())
        .map_err(|e| ApiError::BadRequest(format!("invalid Stripe customer id: {e}")))
}

/// One customer's link
///
/// The matcher's link for one Stripe customer of the tenant, with the manual decisions about
/// it (newest first, at most 50). CSM role. Audited.
#[utoipa::path(
    get,
    path = "/api/matching/customers/{stripe_customer_id}",
    operation_id = "matching_customer",
    tag = "matching",
    params(("stripe_customer_id" = String, Path, description = "The Stripe customer (`cus_…`)")),
    responses(
        (status = 200, description = "The link and its decisions", body = CustomerMatch),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthenticated),
        (status = 403, response = crate::openapi::Forbidden),
        (status = 404, response = crate::openapi::NotFound),
        (status = 429, response = crate::openapi::RateLimited),
        (status = 503, response = crate::openapi::Unavailable),
    ),
    security(("bearer" = []))
)]
async fn customer(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Csm)?;
    let id = customer_id(&path)?;
    let mut conn = state.conn().await?;
    let link = load_link(&mut conn, caller.tenant.as_str(), &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let decisions: Vec<DecisionView> = diesel::sql_query(
        "SELECT request_id, action, account_id, actor, note, outcome, at FROM matching.manual_decision_log \
         WHERE tenant_id = $1 AND stripe_customer_id = $2 ORDER BY at DESC LIMIT 50",
    )
    .bind::<Text, _>(caller.tenant.as_str())
    .bind::<Text, _>(&id)
    .load(&mut conn)
    .await?;
    audit::record_read(
        &mut conn,
        &caller,
        "matching.customer.read",
        Some(&id),
        serde_json::json!({}),
    )
    .await?;
    Ok(HttpResponse::Ok().json(CustomerMatch { link, decisions }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({ "action": "set", "account_id": "acc-acme", "note": "confirmed with the CSM" }))]
pub struct DecisionRequest {
    /// `confirm`, `reject`, `set` or `clear`.
    pub action: String,
    /// `set`: the account to link; `reject`: the account that is wrong (omit: no account);
    /// `confirm`: optional, must be the current link.
    pub account_id: Option<String>,
    /// Up to 500 characters, kept in the decision log.
    pub note: Option<String>,
}

/// The decision is on its way to the matcher, which applies it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DecisionAccepted {
    pub request_id: String,
    /// `queued`.
    #[schema(example = "queued")]
    pub status: &'static str,
}

#[derive(QueryableByName)]
struct Found {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Decide a customer's link
///
/// Confirms, rejects, sets or clears the link of one Stripe customer. The matcher applies the
/// decision (202 once the broker confirmed it). Admins only. Audited.
#[utoipa::path(
    post,
    path = "/api/matching/customers/{stripe_customer_id}/decision",
    operation_id = "matching_decide",
    tag = "matching",
    params(("stripe_customer_id" = String, Path, description = "The Stripe customer (`cus_…`)")),
    request_body = DecisionRequest,
    responses(
        (status = 202, description = "Queued for the matcher", body = DecisionAccepted),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthenticated),
        (status = 403, response = crate::openapi::Forbidden),
        (status = 404, response = crate::openapi::NotFound),
        (status = 409, response = crate::openapi::Conflict),
        (status = 429, response = crate::openapi::RateLimited),
        (status = 503, response = crate::openapi::Unavailable),
    ),
    security(("bearer" = []))
)]
async fn decide(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<DecisionRequest>,
) -> Result<HttpResponse, ApiError> {
    use v1::manual_decision_requested::Action;
    caller.require(Role::Admin)?;
    let id = customer_id(&path)?;
    let action = match body.action.as_str() {
        "confirm" => Action::Confirm,
        "reject" => Action::Reject,
        "set" => Action::Set,
        "clear" => Action::Clear,
        other => {
            return Err(ApiError::BadRequest(format!(
                "action must be confirm, reject, set or clear, not `{other}`"
            )))
        }
    };
    let account = body
        .account_id
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty());
    let note = body.note.as_deref().map(str::trim).unwrap_or_default();
    if note.chars().count() > 500 {
        return Err(ApiError::BadRequest(
            "note is limited to 500 characters".into(),
        ));
    }
    let mut conn = state.conn().await?;
    let link = load_link(&mut conn, caller.tenant.as_str(), &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    match (action, account) {
        (Action::Set, None) => {
            return Err(ApiError::BadRequest("`set` needs an account_id".into()))
        }
        (Action::Clear, Some(_)) => {
            return Err(ApiError::BadRequest("`clear` takes no account_id".into()))
        }
        (Action::Confirm, _) if link.account_id.is_none() => {
            return Err(ApiError::Conflict(
                "the customer has no link to confirm; use `set`".into(),
            ))
        }
        (Action::Confirm, Some(a)) if link.account_id.as_deref() != Some(a) => {
            return Err(ApiError::Conflict(format!(
                "the customer is linked to {}, not {a}",
                link.account_id.as_deref().unwrap_or_default()
            )))
        }
        _ => {}
    }
    if let (Action::Set | Action::Reject, Some(account)) = (action, account) {
        let found: Vec<Found> = diesel::sql_query(
            "SELECT count(*) AS n FROM matching.cscx_accounts WHERE tenant_id = $1 AND account_id = $2",
        )
        .bind::<Text, _>(caller.tenant.as_str())
        .bind::<Text, _>(account)
        .load(&mut conn)
        .await?;
        if found.into_iter().next().map_or(0, |f| f.n) == 0 {
            return Err(ApiError::BadRequest(format!(
                "no account {account} in this tenant"
            )));
        }
    }
    let request = v1::ManualDecisionRequested {
        request_id: uuid::Uuid::new_v4().to_string(),
        stripe_customer_id: id.clone(),
        action: action as i32,
        account_id: account.unwrap_or_default().to_owned(),
        actor: caller.user.clone(),
        note: note.to_owned(),
        requested_at_ms: Utc::now().timestamp_millis(),
    };
    let message = Outgoing::protobuf(
        v1::ManualDecisionRequested::EXCHANGE,
        request.routing_key(),
        request.request_id.clone(),
        v1::ManualDecisionRequested::TYPE,
        caller.tenant.as_str(),
        request.encode_to_vec(),
    );
    match tokio::time::timeout(PUBLISH_TIMEOUT, state.bus.publish(&message)).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::warn!(%error, "decision not published");
            return Err(ApiError::Unavailable);
        }
        Err(_) => return Err(ApiError::Unavailable),
    }
    audit::record(
        &mut conn,
        &caller,
        "matching.decision.requested",
        Some(&id),
        serde_json::json!({
            "request_id": request.request_id,
            "action": body.action,
            "account_id": account,
            "previous_account_id": link.account_id,
        }),
    )
    .await?;
    Ok(HttpResponse::Accepted().json(DecisionAccepted {
        request_id: request.request_id,
        status: "queued",
    }))
}
