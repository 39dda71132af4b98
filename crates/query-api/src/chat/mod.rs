//! `POST /api/stripe/chat` (also `POST /api/chat/commands`): the PRD's chat commands.
//! [`domain::chat::parse_chat`] reads the text; a question's account is resolved by name
//! within the caller's tenant ([`domain::chat::resolve_account`]): one account is answered,
//! several are offered as a choice (send `account_id` with the same text to pick), an
//! unknown name is a 404 that says so. "Alert me on …" creates the caller's alert rule.
//! Every answer is structured (`answer`) and rendered as a short text (`reply`).

pub mod answer;

use actix_web::{web, HttpResponse};
use diesel::sql_types::Text;
use diesel::QueryableByName;
use diesel_async::RunQueryDsl as _;
use domain::chat::{
    parse_chat, resolve_account, AccountResolution, ChatCommand, ChatError, KnownAccount, Question,
};
use platform::prepared_sql::prepared_sql;
use serde::{Deserialize, Serialize};

use crate::{
    alerts,
    app::AppState,
    auth::{Caller, Role},
    error::ApiError,
    reads::{self, overview, scope},
};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/stripe/chat", web::post().to(chat))
        .route("/api/chat/commands", web::post().to(chat));
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({ "text": "what is the billing status of Acme?" }))]
pub struct ChatRequest {
    /// The command as typed: "billing status of Acme", "failed payments for Globex", "MRR of
    /// Acme", "alert me on payment failures".
    pub text: String,
    /// The account a previous answer offered as a choice; overrides the name in `text`.
    pub account_id: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChatReply {
    /// `billing_status`, `failed_payments`, `mrr` or `alert_rule`.
    pub command: &'static str,
    /// `answered`, `choose` (see `choices`) or `queued` (an alert rule).
    pub status: &'static str,
    /// The answer as a short text for the chat.
    pub reply: String,
    /// The account answered about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<KnownAccount>,
    /// `choose`: the accounts the name could mean.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(required = false)]
    pub choices: Vec<KnownAccount>,
    /// The structured answer: for `billing_status` health, MRR, subscriptions, next invoice,
    /// open signals, open disputes and dunning stage; for `failed_payments` the failed attempts and unpaid
    /// invoices; for `mrr` the MRR report; for `alert_rule` the queued rule.
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    #[schema(value_type = Object, required = false)]
    pub answer: serde_json::Value,
}

#[derive(QueryableByName)]
struct AccountRow {
    #[diesel(sql_type = Text)]
    account_id: String,
    #[diesel(sql_type = Text)]
    name: String,
}

/// Chat command
///
/// Answers a question typed in the chat about an account named in the text — billing status,
/// failed payments, MRR — or creates the caller's alert rule ("alert me on …", 202). When
/// several accounts match the name the answer is a choice (`status` = `choose`): send the same
/// text again with the chosen `account_id`. CSM role. Audited.
#[utoipa::path(
    post,
    path = "/api/stripe/chat",
    operation_id = "chat",
    tag = "chat",
    request_body = ChatRequest,
    responses(
        (status = 200, description = "Answered, or a choice of accounts", body = ChatReply),
        (status = 202, description = "An alert rule, queued for the risk engine", body = ChatReply),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthenticated),
        (status = 403, response = crate::openapi::Forbidden),
        (status = 404, response = crate::openapi::NotFound),
        (status = 429, response = crate::openapi::RateLimited),
        (status = 503, response = crate::openapi::Unavailable),
    ),
    security(("bearer" = []))
)]
async fn chat(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<ChatRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Csm)?;
    let ChatRequest { text, account_id } = body.into_inner();
    let picked = account_id
        .as_deref()
        .map(scope::parse_account_id)
        .transpose()?;
    let parsed = parse_chat(&text);
    let (question, readings) = match (parsed, picked) {
        (Ok(ChatCommand::Alert(draft)), _) => {
            let accepted = alerts::save(
                &state,
                &caller,
                draft.into_rule(caller.user.clone()),
                "chat",
            )
            .await?;
            return Ok(HttpResponse::Accepted().json(ChatReply {
                command: "alert_rule",
                status: accepted.status,
                reply: accepted.description.clone(),
                account: None,
                choices: Vec::new(),
                answer: serde_json::to_value(&accepted).map_err(ApiError::internal)?,
            }));
        }
        (Ok(ChatCommand::Ask { readings }), _) => (readings[0].question, readings),
        (Err(ChatError::NoAccount(question)), Some(_)) => (question, Vec::new()),
        (Err(error), _) => return Err(ApiError::BadRequest(error.to_string())),
    };
    let mut conn = state.conn().await?;
    let account = match picked {
        Some(id) => id.to_owned(),
        None => {
            let accounts: Vec<KnownAccount> = prepared_sql(
                "SELECT account_id, name FROM matching.cscx_accounts WHERE tenant_id = $1",
            )
            .bind::<Text, _>(caller.tenant.as_str())
            .load::<AccountRow>(&mut conn)
            .await?
            .into_iter()
            .map(|a| KnownAccount {
                account_id: a.account_id,
                name: a.name,
            })
            .collect();
            match resolve_account(&readings, &accounts) {
                AccountResolution::Found { account, .. } => account.account_id.clone(),
                AccountResolution::Ambiguous { reading, choices } => {
                    let names = choices
                        .iter()
                        .map(|a| format!("{} ({})", a.name, a.account_id))
                        .collect::<Vec<_>>()
                        .join(", ");
                    return Ok(HttpResponse::Ok().json(ChatReply {
                        command: reading.question.as_str(),
                        status: "choose",
                        reply: format!(
                            "Several accounts match \"{}\": {names}. Which one? Send the same \
                             question with its account_id.",
                            reading.account
                        ),
                        account: None,
                        choices: choices.into_iter().cloned().collect(),
                        answer: serde_json::Value::Null,
                    }));
                }
                AccountResolution::Unknown { reading } => {
                    return Err(ApiError::NotFoundWith(format!(
                        "I don't know an account called \"{}\" here.",
                        reading.account
                    )));
                }
            }
        }
    };
    let scope = scope::resolve(&mut conn, &caller, &account).await?;
    let known = KnownAccount {
        account_id: scope.account_id.clone(),
        name: scope.name.clone(),
    };
    let (reply, answer, action) = match question {
        Question::Mrr => {
            let report = reads::mrr::load(&mut conn, &scope).await?;
            (
                answer::mrr(&scope.name, &report),
                serde_json::to_value(&report),
                "billing.mrr.read",
            )
        }
        Question::BillingStatus | Question::FailedPayments => {
            let view = overview::load(&mut conn, &scope).await?;
            let reply = if question == Question::BillingStatus {
                answer::billing_status(&view)
            } else {
                answer::failed_payments(&view)
            };
            let answer = if question == Question::BillingStatus {
                serde_json::json!({
                    "health": view.health,
                    "mrr": view.mrr,
                    "subscriptions": view.live_subscriptions().collect::<Vec<_>>(),
                    "next_invoice_at": view.next_invoice_at,
                    "open_signals": view.open_signals,
                    "open_disputes": view.open_disputes().collect::<Vec<_>>(),
                    "dunning_stage": view.dunning_stage,
                })
            } else {
                serde_json::json!({
                    "window_days": overview::FAILED_WINDOW_DAYS,
                    "failed_payments": view.failed_payments,
                    "unpaid_invoices": view.unpaid_invoices,
                    "dunning_stage": view.dunning_stage,
                })
            };
            (reply, Ok(answer), "billing.overview.read")
        }
    };
    reads::audited(
        &mut conn,
        &caller,
        action,
        &scope,
        serde_json::json!({ "via": "chat", "question": question.as_str() }),
    )
    .await?;
    Ok(HttpResponse::Ok().json(ChatReply {
        command: question.as_str(),
        status: "answered",
        reply,
        account: Some(known),
        choices: Vec::new(),
        answer: answer.map_err(ApiError::internal)?,
    }))
}
