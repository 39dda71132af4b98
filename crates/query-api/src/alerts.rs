//! CSM alerts (FR-5, AC-3): a CSM's alert rules — set with `POST /api/alerts/rules` or the chat
//! command "alert me on payment failures" (`crate::chat`) — and the alerts they
//! produced. The risk engine owns rules and alerts: a rule change is an `AlertRuleRequested`
//! on the `risk` exchange (202 once the broker confirmed it); reads go through its views
//! (`risk.csm_alert_rules`, `risk.csm_alerts`). A CSM manages their own rules; an admin may
//! manage any CSM's. Every read and change is audit-logged.

use std::time::Duration;

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use contracts::{v1, Contract as _};
use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamptz};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl as _;
use domain::risk::{AlertRule, AlertScope, DigestMode, Severity, SignalKind};
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
    cfg.route("/api/alerts/rules", web::get().to(list_rules))
        .route("/api/alerts/rules", web::post().to(create_rule))
        .route("/api/alerts/rules/{rule_id}", web::delete().to(delete_rule))
        .route("/api/alerts", web::get().to(list_alerts));
}

const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({ "kinds": ["payment_failed"], "min_severity": "medium", "delivery": "immediate" }))]
pub struct RuleRequest {
    /// Signal kinds (`payment_failed`, `card_expiring`, …); empty or absent = every kind.
    #[serde(default)]
    #[schema(value_type = Vec<domain::risk::SignalKind>)]
    pub kinds: Vec<String>,
    /// `low` (default), `medium`, `high`, `critical`.
    pub min_severity: Option<String>,
    /// `mine` (default: the CSM's accounts) or `tenant` (every account).
    pub scope: Option<String>,
    /// `immediate` (default) or `hourly` (digest).
    pub delivery: Option<String>,
    /// Admins only: the CSM the rule is for (default: the caller).
    pub csm_user_id: Option<String>,
}

/// The rule change is on its way to the risk engine, which applies it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RuleAccepted {
    pub rule_id: String,
    pub request_id: String,
    /// `queued`.
    #[schema(example = "queued")]
    pub status: &'static str,
    /// What the rule does, in words.
    pub description: String,
}

fn parse_rule(body: &RuleRequest, csm: &str) -> Result<AlertRule, ApiError> {
    let kinds = body
        .kinds
        .iter()
        .map(|k| {
            k.parse::<SignalKind>()
                .map_err(|e| ApiError::BadRequest(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let min_severity = match body.min_severity.as_deref() {
        None | Some("") => Severity::Low,
        Some(s) => s
            .parse()
            .map_err(|e: domain::risk::UnknownSeverity| ApiError::BadRequest(e.to_string()))?,
    };
    let scope = match body.scope.as_deref() {
        None | Some("") | Some("mine") => AlertScope::Mine,
        Some("tenant") => AlertScope::Tenant,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "scope must be `mine` or `tenant`, not `{other}`"
            )))
        }
    };
    let digest = match body.delivery.as_deref() {
        None | Some("") | Some("immediate") => DigestMode::Immediate,
        Some("hourly") => DigestMode::Hourly,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "delivery must be `immediate` or `hourly`, not `{other}`"
            )))
        }
    };
    Ok(AlertRule {
        csm_user_id: csm.to_owned(),
        kinds,
        min_severity,
        scope,
        digest,
    })
}

/// The CSM a request acts for: the caller, or (admins only) another user.
fn target_csm(caller: &Caller, requested: Option<&str>) -> Result<String, ApiError> {
    match requested.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(caller.user.clone()),
        Some(other) if other == caller.user => Ok(other.to_owned()),
        Some(other) => {
            caller.require(Role::Admin)?;
            if other.len() > 128 {
                return Err(ApiError::BadRequest("csm_user_id is too long".into()));
            }
            Ok(other.to_owned())
        }
    }
}

fn describe(rule: &AlertRule) -> String {
    domain::risk::AlertRuleDraft {
        kinds: rule.kinds.clone(),
        min_severity: rule.min_severity,
        scope: rule.scope,
        digest: rule.digest,
    }
    .describe()
}

/// Publishes the rule change with confirms; 503 when the broker does not confirm.
async fn publish_rule(
    state: &AppState,
    caller: &Caller,
    rule_id: &str,
    rule: Option<&AlertRule>,
    csm: &str,
) -> Result<String, ApiError> {
    let request = v1::AlertRuleRequested {
        request_id: uuid::Uuid::new_v4().to_string(),
        rule_id: rule_id.to_owned(),
        csm_user_id: csm.to_owned(),
        kinds: rule
            .map(|r| r.kinds.iter().map(|k| k.as_str().to_owned()).collect())
            .unwrap_or_default(),
        min_severity: rule
            .map(|r| r.min_severity.as_str().to_owned())
            .unwrap_or_default(),
        scope: rule
            .map(|r| r.scope.as_str().to_owned())
            .unwrap_or_default(),
        delivery: rule
            .map(|r| r.digest.as_str().to_owned())
            .unwrap_or_default(),
        delete: rule.is_none(),
        actor: caller.user.clone(),
        requested_at_ms: Utc::now().timestamp_millis(),
    };
    let message = Outgoing::protobuf(
        v1::AlertRuleRequested::EXCHANGE,
        request.routing_key(),
        request.request_id.clone(),
        v1::AlertRuleRequested::TYPE,
        caller.tenant.as_str(),
        request.encode_to_vec(),
    );
    match tokio::time::timeout(PUBLISH_TIMEOUT, state.bus.publish(&message)).await {
        Ok(Ok(())) => Ok(request.request_id),
        Ok(Err(error)) => {
            tracing::warn!(%error, "alert rule not published");
            Err(ApiError::Unavailable)
        }
        Err(_) => Err(ApiError::Unavailable),
    }
}

pub async fn save(
    state: &AppState,
    caller: &Caller,
    rule: AlertRule,
    via: &str,
) -> Result<RuleAccepted, ApiError> {
    let rule_id = format!("rule_{}", uuid::Uuid::now_v7().simple());
    let request_id = publish_rule(state, caller, &rule_id, Some(&rule), &rule.csm_user_id).await?;
    let mut conn = state.conn().await?;
    audit::record(
        &mut conn,
        caller,
        "alerts.rule.created",
        Some(&rule_id),
        serde_json::json!({
            "via": via,
            "csm_user_id": rule.csm_user_id,
            "kinds": rule.kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
            "min_severity": rule.min_severity.as_str(),
            "scope": rule.scope.as_str(),
            "delivery": rule.digest.as_str(),
        }),
    )
    .await?;
    Ok(RuleAccepted {
        description: describe(&rule),
        rule_id,
        request_id,
        status: "queued",
    })
}

/// Create an alert rule
///
/// Alerts a CSM (the caller, or for admins `csm_user_id`) on signals of the given kinds and
/// severity. The risk engine applies the rule (202 once the broker confirmed it). Audited.
#[utoipa::path(
    post,
    path = "/api/alerts/rules",
    operation_id = "create_alert_rule",
    tag = "alerts",
    request_body = RuleRequest,
    responses(
        (status = 202, description = "Queued for the risk engine", body = RuleAccepted),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthenticated),
        (status = 403, response = crate::openapi::Forbidden),
        (status = 429, response = crate::openapi::RateLimited),
        (status = 503, response = crate::openapi::Unavailable),
    ),
    security(("bearer" = []))
)]
async fn create_rule(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<RuleRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Csm)?;
    let csm = target_csm(&caller, body.csm_user_id.as_deref())?;
    let rule = parse_rule(&body, &csm)?;
    Ok(HttpResponse::Accepted().json(save(&state, &caller, rule, "api").await?))
}

/// A CSM's alert rule as the risk engine holds it.
#[derive(Debug, Serialize, QueryableByName, utoipa::ToSchema)]
pub struct RuleView {
    #[diesel(sql_type = Text)]
    pub rule_id: String,
    #[diesel(sql_type = Text)]
    pub csm_user_id: String,
    #[diesel(sql_type = Array<Text>)]
    pub kinds: Vec<String>,
    #[diesel(sql_type = Text)]
    pub min_severity: String,
    #[diesel(sql_type = Text)]
    pub scope: String,
    #[diesel(sql_type = Text)]
    pub delivery: String,
    #[diesel(sql_type = Text)]
    pub created_by: String,
    #[diesel(sql_type = Timestamptz)]
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ForCsm {
    /// Admins: another CSM's rules or alerts.
    pub csm_user_id: Option<String>,
    /// Alerts: how many, newest first, 1–200 (default 50); rules ignore it.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// A CSM's alert rules, by rule id.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RuleList {
    pub data: Vec<RuleView>,
}

/// A CSM's alerts, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AlertList {
    pub data: Vec<AlertView>,
}

/// The rule's removal is on its way to the risk engine.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RuleDeleted {
    pub rule_id: String,
    pub request_id: String,
    /// `queued`.
    #[schema(example = "queued")]
    pub status: &'static str,
}

/// List alert rules
///
/// The caller's alert rules (admins: `csm_user_id`'s). CSM role. Audited.
#[utoipa::path(
    get,
    path = "/api/alerts/rules",
    operation_id = "list_alert_rules",
    tag = "alerts",
    params(ForCsm),
    responses(
        (status = 200, description = "The CSM's rules", body = RuleList),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthenticated),
        (status = 403, response = crate::openapi::Forbidden),
        (status = 429, response = crate::openapi::RateLimited),
        (status = 503, response = crate::openapi::Unavailable),
    ),
    security(("bearer" = []))
)]
async fn list_rules(
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<ForCsm>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Csm)?;
    let csm = target_csm(&caller, query.csm_user_id.as_deref())?;
    let mut conn = state.conn().await?;
    let rules: Vec<RuleView> = diesel::sql_query(
        "SELECT rule_id, csm_user_id, kinds, min_severity, scope, delivery, created_by, updated_at \
         FROM risk.csm_alert_rules WHERE tenant_id = $1 AND csm_user_id = $2 ORDER BY rule_id",
    )
    .bind::<Text, _>(caller.tenant.as_str())
    .bind::<Text, _>(&csm)
    .load(&mut conn)
    .await?;
    audit::record_read(
        &mut conn,
        &caller,
        "alerts.rules.read",
        Some(&csm),
        serde_json::json!({}),
    )
    .await?;
    Ok(HttpResponse::Ok().json(RuleList { data: rules }))
}

/// Delete an alert rule
///
/// Removes one of the caller's rules (admins: anyone's). The risk engine applies it (202 once
/// the broker confirmed it). Audited.
#[utoipa::path(
    delete,
    path = "/api/alerts/rules/{rule_id}",
    operation_id = "delete_alert_rule",
    tag = "alerts",
    params(("rule_id" = String, Path, description = "The rule (`rule_…`)")),
    responses(
        (status = 202, description = "Queued for the risk engine", body = RuleDeleted),
        (status = 401, response = crate::openapi::Unauthenticated),
        (status = 403, response = crate::openapi::Forbidden),
        (status = 404, response = crate::openapi::NotFound),
        (status = 429, response = crate::openapi::RateLimited),
        (status = 503, response = crate::openapi::Unavailable),
    ),
    security(("bearer" = []))
)]
async fn delete_rule(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Csm)?;
    let rule_id = path.into_inner();
    let mut conn = state.conn().await?;
    #[derive(QueryableByName)]
    struct Owner {
        #[diesel(sql_type = Text)]
        csm_user_id: String,
    }
    let owner: Vec<Owner> = diesel::sql_query(
        "SELECT csm_user_id FROM risk.csm_alert_rules WHERE tenant_id = $1 AND rule_id = $2",
    )
    .bind::<Text, _>(caller.tenant.as_str())
    .bind::<Text, _>(&rule_id)
    .load(&mut conn)
    .await?;
    let owner = owner
        .into_iter()
        .next()
        .ok_or(ApiError::NotFound)?
        .csm_user_id;
    if owner != caller.user {
        caller.require(Role::Admin)?;
    }
    drop(conn);
    let request_id = publish_rule(&state, &caller, &rule_id, None, &owner).await?;
    let mut conn = state.conn().await?;
    audit::record(
        &mut conn,
        &caller,
        "alerts.rule.deleted",
        Some(&rule_id),
        serde_json::json!({ "csm_user_id": owner }),
    )
    .await?;
    Ok(HttpResponse::Accepted().json(RuleDeleted {
        rule_id,
        request_id,
        status: "queued",
    }))
}

/// An alert a rule produced, with its signal and webhook delivery.
#[derive(Debug, Serialize, QueryableByName, utoipa::ToSchema)]
pub struct AlertView {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub alert_id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    pub rule_id: String,
    #[diesel(sql_type = Text)]
    pub delivery: String,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub signal_id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = Text)]
    pub severity: String,
    #[diesel(sql_type = Text)]
    pub summary: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub account_id: Option<String>,
    /// Set once the signal's cause cleared.
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub resolved_at: Option<DateTime<Utc>>,
    /// Delivery to the tenant's webhook: pending, delivered, failed, skipped (none configured).
    #[diesel(sql_type = Nullable<Text>)]
    pub webhook_status: Option<String>,
    #[diesel(sql_type = Nullable<diesel::sql_types::Integer>)]
    pub webhook_attempts: Option<i32>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub webhook_delivered_at: Option<DateTime<Utc>>,
}

/// List alerts
///
/// The caller's alerts (admins: `csm_user_id`'s), newest first. CSM role. Audited.
#[utoipa::path(
    get,
    path = "/api/alerts",
    operation_id = "list_alerts",
    tag = "alerts",
    params(ForCsm),
    responses(
        (status = 200, description = "The CSM's alerts", body = AlertList),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthenticated),
        (status = 403, response = crate::openapi::Forbidden),
        (status = 429, response = crate::openapi::RateLimited),
        (status = 503, response = crate::openapi::Unavailable),
    ),
    security(("bearer" = []))
)]
async fn list_alerts(
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<ForCsm>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Csm)?;
    let csm = target_csm(&caller, query.csm_user_id.as_deref())?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::BadRequest(
            "limit must be between 1 and 200".into(),
        ));
    }
    let mut conn = state.conn().await?;
    let alerts: Vec<AlertView> = diesel::sql_query(
        "SELECT alert_id, rule_id, delivery, created_at, signal_id, kind, severity, summary, account_id, resolved_at, \
         webhook_status, webhook_attempts, webhook_delivered_at FROM risk.csm_alerts WHERE tenant_id = $1 AND csm_user_id = $2 ORDER BY created_at DESC LIMIT $3",
    )
    .bind::<Text, _>(caller.tenant.as_str())
    .bind::<Text, _>(&csm)
    .bind::<BigInt, _>(limit)
    .load(&mut conn)
    .await?;
    audit::record_read(
        &mut conn,
        &caller,
        "alerts.read",
        Some(&csm),
        serde_json::json!({ "returned": alerts.len() }),
    )
    .await?;
    Ok(HttpResponse::Ok().json(AlertList { data: alerts }))
}
