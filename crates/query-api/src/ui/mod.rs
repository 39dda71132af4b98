//! The embeddable billing widget: `GET /ui/accounts/{customerId}` renders one account's
//! billing status (subscription status, MRR, next invoice, payment health), its billing
//! alerts, an MRR-over-time chart and its invoice history with failed payments highlighted,
//! as server-rendered HTML with one bundled stylesheet — no script, no CDN.
//!
//! CSCX embeds it in an iframe, which cannot send headers, so besides `Authorization:
//! Bearer` the page accepts the token as `?token=` (CSCX should mint a short-lived one per
//! embed). The response is never cached, sends no referrer (the token stays in the frame)
//! and may only be framed by the configured CSCX origins (`frame-ancestors`).

pub mod chart;
pub mod view;

use std::sync::Arc;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::{
    app::AppState,
    auth::{Caller, Role, TokenKeys},
    error::ApiError,
    reads::{self, invoices, mrr, overview, scope},
};

const STYLESHEET: &str = include_str!("../../assets/widget.css");
/// Invoices the widget lists.
const INVOICES: i64 = 12;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/ui/accounts/{customer_id}", web::get().to(account_page))
        .route("/ui/assets/widget.css", web::get().to(stylesheet));
}

#[derive(Template)]
#[template(path = "widget.html")]
struct WidgetPage<'a> {
    view: &'a view::WidgetView,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub token: Option<String>,
}

/// The page's security headers: framed only by CSCX, never cached, no referrer, nothing
/// but our own stylesheet loaded.
fn secure(
    mut builder: actix_web::HttpResponseBuilder,
    frame_ancestors: &str,
) -> actix_web::HttpResponseBuilder {
    builder
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            format!(
                "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; \
                 form-action 'none'; frame-ancestors {frame_ancestors}"
            ),
        ));
    builder
}

fn error_page(error: &ApiError, frame_ancestors: &str) -> HttpResponse {
    let status = actix_web::ResponseError::status_code(error);
    let title = match status {
        StatusCode::UNAUTHORIZED => "Sign-in needed",
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::NOT_FOUND => "Account not found",
        StatusCode::BAD_REQUEST => "Bad request",
        _ => "Billing is unavailable",
    };
    if let ApiError::Internal(cause) = error {
        tracing::error!(error = %format!("{cause:#}"), "widget failed");
    }
    let message = error.to_string();
    let body = ErrorPage {
        title,
        message: &message,
    }
    .render()
    .unwrap_or_else(|_| title.to_owned());
    secure(HttpResponse::build(status), frame_ancestors).body(body)
}

/// The caller from `Authorization: Bearer` or, for iframes, `?token=`.
fn caller(req: &HttpRequest, query: &PageQuery) -> Result<Caller, ApiError> {
    let keys = req
        .app_data::<web::Data<Arc<TokenKeys>>>()
        .ok_or(ApiError::Unavailable)?;
    let header_token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        });
    let token = header_token
        .or(query.token.as_deref())
        .ok_or(ApiError::Unauthenticated)?;
    keys.verify(token.trim())
}

async fn render(
    req: &HttpRequest,
    state: &AppState,
    raw_id: &str,
    query: &PageQuery,
) -> Result<String, ApiError> {
    let caller = caller(req, query)?;
    caller.require(Role::Csm)?;
    let mut conn = state.conn().await?;
    let scope = scope::resolve(&mut conn, &caller, raw_id).await?;
    let overview = overview::load(&mut conn, &scope).await?;
    let invoices = invoices::recent(&mut conn, &scope, INVOICES).await?;
    let report = mrr::load(&mut conn, &scope).await?;
    reads::audited(
        &mut conn,
        &caller,
        "billing.widget.read",
        &scope,
        serde_json::json!({ "invoices": invoices.len() }),
    )
    .await?;
    let view = view::build(&overview, &invoices, &report, chrono::Utc::now());
    WidgetPage { view: &view }
        .render()
        .map_err(ApiError::internal)
}

/// Billing widget
///
/// One account's billing as an HTML page for CSCX to embed in an iframe: subscription status,
/// MRR, next invoice, payment health, alerts, an MRR chart and the invoice history. The token
/// comes as `Authorization: Bearer` or, for iframes, as `?token=` (the only query parameter).
/// Errors are HTML pages too. Never cached; framed only by the CSCX origins. CSM role.
/// Audited.
#[utoipa::path(
    get,
    path = "/ui/accounts/{customer_id}",
    operation_id = "billing_widget",
    tag = "widget",
    params(("customer_id" = String, Path, description = "The CSCX account id (1–128 characters)")),
    responses(
        (status = 200, description = "The widget page", body = String, content_type = "text/html"),
        (status = 400, description = "Malformed account id or query (an HTML error page)", body = String, content_type = "text/html"),
        (status = 401, description = "No valid token (an HTML error page)", body = String, content_type = "text/html"),
        (status = 403, description = "The token lacks the CSM role (an HTML error page)", body = String, content_type = "text/html"),
        (status = 404, description = "No such account in the tenant (an HTML error page)", body = String, content_type = "text/html"),
        (status = 429, response = crate::openapi::RateLimited),
        (status = 503, description = "Billing is unavailable (an HTML error page)", body = String, content_type = "text/html"),
    ),
    security(("bearer" = []), ("widget_token" = []))
)]
async fn account_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: Result<web::Query<PageQuery>, actix_web::Error>,
) -> HttpResponse {
    let frame_ancestors = state.settings.frame_ancestors();
    let result = match query {
        Ok(query) => render(&req, &state, &path, &query).await,
        Err(_) => Err(ApiError::BadRequest(
            "the only query parameter is `token`".into(),
        )),
    };
    match result {
        Ok(body) => secure(HttpResponse::Ok(), &frame_ancestors).body(body),
        Err(error) => error_page(&error, &frame_ancestors),
    }
}

/// Widget stylesheet
///
/// The widget's one stylesheet (public, cacheable for an hour).
#[utoipa::path(
    get,
    path = "/ui/assets/widget.css",
    operation_id = "widget_stylesheet",
    tag = "widget",
    responses((status = 200, description = "The stylesheet", body = String, content_type = "text/css"))
)]
async fn stylesheet() -> HttpResponse {
    css(STYLESHEET)
}

/// A bundled stylesheet: public, cacheable for an hour, never sniffed as anything else.
pub fn css(body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/css; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(body)
}
