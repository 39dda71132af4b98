//! The API's OpenAPI 3.1 document, generated from the code: the handlers' `#[utoipa::path]`
//! annotations and the `ToSchema` / `IntoParams` types they take and return. Served as
//! `GET /api/openapi.json`, and rendered from the same document as a self-contained page at
//! `GET /api/docs`: server-side HTML (askama, escaped) with our own stylesheet, no script, no
//! CDN, nothing fetched at build or run time — production clusters have no internet.
//!
//! Neither route needs a token: the document describes the API and holds no tenant data
//! (like `/healthz`, they are outside the per-token rate limit unless a token is sent).
//!
//! Adding a route: annotate its handler, list it in [`ApiDoc`]'s `paths(...)` and in the
//! `ROUTES` of this module's test, which fails for a registered route the document lacks.

use std::collections::HashMap;
use std::sync::LazyLock;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde_json::Value;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::RefOr;
use utoipa::{Modify, OpenApi};

use crate::error::ErrorBody;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/openapi.json", web::get().to(document))
        .route("/api/docs", web::get().to(docs_page))
        .route("/api/docs.css", web::get().to(docs_stylesheet));
}

const DESCRIPTION: &str = "Billing from Stripe for CSCX: the read API per CSCX account, Stripe \
connections, matching review, CSM alerts, chat commands and the embeddable billing widget.

**Authentication.** Every `/api` operation except the Connect OAuth callback and these docs takes \
`Authorization: Bearer <JWT>` (HS256; issuer `cscx`, audience `billing-api`; claims `sub` = the \
user, `tid` = the tenant, `roles` = `csm` and/or `admin`). Everything is scoped to the token's \
tenant: another tenant's ids answer 404, never data.

**Errors** are `{\"error\": {\"code\", \"message\"}}` with the status; `code` is stable, \
`message` is for people.

**Rate limit.** Each token has its own budget; over it the answer is 429 with `Retry-After`.";

/// The document: every route the query-api serves.
#[derive(OpenApi)]
#[openapi(
    info(title = "CSCX billing API (query-api)", description = DESCRIPTION),
    paths(
        crate::connections::connect,
        crate::connections::list,
        crate::connections::disconnect,
        crate::oauth::callback,
        crate::reads::customer::show,
        crate::reads::subscriptions::list,
        crate::reads::invoices::list,
        crate::reads::mrr::show,
        crate::reads::signals::list,
        crate::reads::revenue_at_risk::show,
        crate::matching::review,
        crate::matching::customer,
        crate::matching::decide,
        crate::alerts::list_rules,
        crate::alerts::create_rule,
        crate::alerts::delete_rule,
        crate::alerts::list_alerts,
        crate::alert_webhook::get,
        crate::alert_webhook::put,
        crate::alert_webhook::delete,
        crate::chat::chat,
        crate::ui::account_page,
        crate::ui::stylesheet,
        document,
        docs_page,
        docs_stylesheet,
        platform_routes::healthz,
        platform_routes::readyz,
        platform_routes::metrics,
    ),
    components(
        schemas(ErrorBody),
        responses(BadRequest, Unauthenticated, Forbidden, NotFound, Conflict, RateLimited, Unavailable)
    ),
    modifiers(&SecuritySchemes, &ChatAlias),
    tags(
        (name = "billing", description = "Billing per CSCX account (`customer_id` = the CSCX account id), aggregated over every Stripe customer the matcher linked to it"),
        (name = "connections", description = "Connecting the tenant's Stripe account: restricted key or Connect OAuth (admins)"),
        (name = "matching", description = "Reviewing and deciding which CSCX account a Stripe customer belongs to"),
        (name = "alerts", description = "CSM alert rules, the alerts they produced, and the tenant's outbound alert webhook"),
        (name = "chat", description = "The chat commands"),
        (name = "widget", description = "The billing widget CSCX embeds (HTML)"),
        (name = "docs", description = "This document and its page (no token)"),
        (name = "operations", description = "Health, readiness and metrics (no token)"),
    )
)]
pub struct ApiDoc;

/// The request is malformed; `message` says what to fix.
#[derive(utoipa::ToResponse)]
#[response(example = json!({ "error": { "code": "bad_request", "message": "limit must be between 1 and 100" } }))]
pub struct BadRequest(pub ErrorBody);

/// No valid bearer token (missing, expired, forged, wrong issuer or audience).
#[derive(utoipa::ToResponse)]
#[response(example = json!({ "error": { "code": "unauthenticated", "message": "authentication required" } }))]
pub struct Unauthenticated(pub ErrorBody);

/// The token's roles do not allow this (`csm` or `admin`, as the operation says).
#[derive(utoipa::ToResponse)]
#[response(example = json!({ "error": { "code": "forbidden", "message": "this action needs the admin role" } }))]
pub struct Forbidden(pub ErrorBody);

/// Nothing of that id in the caller's tenant.
#[derive(utoipa::ToResponse)]
#[response(example = json!({ "error": { "code": "not_found", "message": "not found" } }))]
pub struct NotFound(pub ErrorBody);

/// The request contradicts the current state (e.g. the Stripe account is already connected).
#[derive(utoipa::ToResponse)]
#[response(example = json!({ "error": { "code": "conflict", "message": "Stripe account acct_123 is already connected" } }))]
pub struct Conflict(pub ErrorBody);

/// Over this token's rate limit; retry after `Retry-After` seconds.
#[derive(utoipa::ToResponse)]
#[response(
    headers(("Retry-After" = u64, description = "Seconds until the token may call again")),
    example = json!({ "error": { "code": "rate_limited", "message": "too many requests for this token; retry in 1 s" } })
)]
pub struct RateLimited(pub ErrorBody);

/// The database, the broker or Stripe cannot be reached right now; retry.
#[derive(utoipa::ToResponse)]
#[response(example = json!({ "error": { "code": "unavailable", "message": "temporarily unavailable; retry" } }))]
pub struct Unavailable(pub ErrorBody);

/// `bearer`: the JWT every `/api` operation takes; `widget_token`: the same token as `?token=`,
/// which only the widget accepts (an iframe cannot send headers).
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "HS256 JWT minted by CSCX (or `billingctl token`): issuer `cscx`, audience \
                         `billing-api`, claims `sub`, `tid` (tenant), `roles` (`csm`, `admin`).",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "widget_token",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "token",
                "The same JWT as a query parameter, for the widget's iframe only; CSCX should \
                 mint a short-lived one per embed.",
            ))),
        );
    }
}

/// `POST /api/chat/commands` is routed to the same handler as `POST /api/stripe/chat`.
struct ChatAlias;

impl Modify for ChatAlias {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let Some(mut item) = doc.paths.paths.get("/api/stripe/chat").cloned() else {
            return;
        };
        if let Some(operation) = item.post.as_mut() {
            operation.operation_id = Some("chat_commands".into());
            operation.summary = Some("Chat command (alias)".into());
            operation.description = Some(format!(
                "The same as `POST /api/stripe/chat`.\n\n{}",
                operation.description.as_deref().unwrap_or_default()
            ));
        }
        doc.paths.paths.insert("/api/chat/commands".into(), item);
    }
}

/// The routes `platform::health::configure` registers, documented here because `platform` has
/// no OpenAPI dependency: annotated stand-ins for its handlers, never routed themselves.
#[allow(dead_code)]
mod platform_routes {
    /// Liveness
    ///
    /// The process is up. Never rate limited.
    #[utoipa::path(
        get,
        path = "/healthz",
        operation_id = "healthz",
        tag = "operations",
        responses((status = 200, description = "Alive", body = Object, example = json!({ "status": "ok" })))
    )]
    async fn healthz() {}

    /// Readiness
    ///
    /// Whether the service can answer: the database reached and migrated (the broker is
    /// reported, not required).
    #[utoipa::path(
        get,
        path = "/readyz",
        operation_id = "readyz",
        tag = "operations",
        responses(
            (status = 200, description = "Ready, with the check's report", body = Object),
            (status = 503, description = "Not ready (starting, draining, or the database is unreachable), with the report", body = Object),
        )
    )]
    async fn readyz() {}

    /// Metrics
    ///
    /// Prometheus metrics in the text exposition format.
    #[utoipa::path(
        get,
        path = "/metrics",
        operation_id = "metrics",
        tag = "operations",
        responses((status = 200, description = "The metrics", body = String, content_type = "text/plain"))
    )]
    async fn metrics() {}
}

/// The document as served (built once).
static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serializes")
});

/// The docs page (rendered once from the served document).
static PAGE: LazyLock<Result<String, String>> = LazyLock::new(|| {
    let doc: Value = serde_json::from_str(&DOCUMENT).map_err(|e| e.to_string())?;
    // `Value` sorts keys; paths and properties keep the document's order (as declared).
    let typed = ApiDoc::openapi();
    let paths = typed
        .paths
        .paths
        .iter()
        .map(|(path, item)| Ok((path.clone(), serde_json::to_value(item)?)))
        .collect::<Result<Vec<_>, serde_json::Error>>()
        .map_err(|e| e.to_string())?;
    let declared: HashMap<String, Vec<String>> = typed
        .components
        .iter()
        .flat_map(|c| &c.schemas)
        .map(|(name, schema)| (name.clone(), declared_order(schema)))
        .collect();
    DocsPage::from_document(&doc, &paths, &declared)
        .render()
        .map_err(|e| e.to_string())
});

const STYLESHEET: &str = include_str!("../assets/api-docs.css");

/// A schema's property names in declaration order (an `allOf`'s, member by member).
fn declared_order(schema: &RefOr<Schema>) -> Vec<String> {
    match schema {
        RefOr::T(Schema::Object(object)) => object.properties.keys().cloned().collect(),
        RefOr::T(Schema::AllOf(all)) => all.items.iter().flat_map(declared_order).collect(),
        _ => Vec::new(),
    }
}

/// OpenAPI document
///
/// This API's OpenAPI 3.1 document, generated from the code. No token needed.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    operation_id = "openapi_document",
    tag = "docs",
    responses((status = 200, description = "The document", body = Object, content_type = "application/json"))
)]
async fn document() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(DOCUMENT.as_str())
}

/// API docs page
///
/// Every operation of this document — method, path, summary, parameters, request body,
/// responses — and every schema, as one HTML page with no script. No token needed.
#[utoipa::path(
    get,
    path = "/api/docs",
    operation_id = "docs_page",
    tag = "docs",
    responses((status = 200, description = "The page", body = String, content_type = "text/html"))
)]
async fn docs_page() -> HttpResponse {
    match PAGE.as_ref() {
        Ok(page) => HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .insert_header((header::REFERRER_POLICY, "no-referrer"))
            .insert_header((
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'self'; base-uri 'none'; form-action 'none'; \
                 frame-ancestors 'none'",
            ))
            .body(page.as_str()),
        Err(error) => {
            tracing::error!(%error, "the API docs page did not render");
            HttpResponse::InternalServerError().finish()
        }
    }
}

/// API docs stylesheet
///
/// The docs page's one stylesheet.
#[utoipa::path(
    get,
    path = "/api/docs.css",
    operation_id = "docs_stylesheet",
    tag = "docs",
    responses((status = 200, description = "The stylesheet", body = String, content_type = "text/css"))
)]
async fn docs_stylesheet() -> HttpResponse {
    crate::ui::css(STYLESHEET)
}

// --- The docs page, read from the JSON document (what clients see, refs and all) ---

#[derive(Template)]
#[template(path = "api_docs.html")]
struct DocsPage {
    title: String,
    version: String,
    openapi: String,
    description: Vec<Rich>,
    security: Vec<Described>,
    tags: Vec<TagSection>,
    schemas: Vec<SchemaView>,
}

/// A name and what it means.
struct Described {
    name: String,
    description: Rich,
}

/// A paragraph of the document's text with its `code` and **strong** spans (the only
/// Markdown the descriptions use), rendered escaped like any text.
#[derive(Default)]
struct Rich {
    spans: Vec<Span>,
}

struct Span {
    text: String,
    code: bool,
    strong: bool,
}

impl Rich {
    fn new(raw: &str) -> Self {
        let mut spans = Vec::new();
        let (mut code, mut strong) = (false, false);
        let mut rest = raw;
        loop {
            let next = if code {
                rest.find('`').map(|i| (i, 1))
            } else {
                match (rest.find('`'), rest.find("**")) {
                    (Some(c), Some(s)) if s < c => Some((s, 2)),
                    (Some(c), _) => Some((c, 1)),
                    (None, Some(s)) => Some((s, 2)),
                    (None, None) => None,
                }
            };
            let Some((at, len)) = next else {
                break;
            };
            if at > 0 {
                spans.push(Span {
                    text: rest[..at].to_owned(),
                    code,
                    strong,
                });
            }
            if len == 1 {
                code = !code;
            } else {
                strong = !strong;
            }
            rest = &rest[at + len..];
        }
        if !rest.is_empty() {
            spans.push(Span {
                text: rest.to_owned(),
                code,
                strong,
            });
        }
        Self { spans }
    }

    fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

struct TagSection {
    name: String,
    description: Rich,
    operations: Vec<OperationView>,
}

struct OperationView {
    anchor: String,
    method: String,
    path: String,
    summary: String,
    description: Vec<Rich>,
    auth: String,
    parameters: Vec<ParameterView>,
    request_body: Option<BodyView>,
    responses: Vec<ResponseView>,
}

struct ParameterView {
    name: String,
    location: String,
    required: bool,
    schema: TypeLabel,
    description: Rich,
}

struct BodyView {
    content_type: String,
    schema: TypeLabel,
    required: bool,
}

struct ResponseView {
    status: String,
    description: Rich,
    body: Option<BodyView>,
    headers: Vec<String>,
}

struct SchemaView {
    name: String,
    anchor: String,
    description: Rich,
    /// What the schema is when it is not an object with properties.
    shape: Option<TypeLabel>,
    includes: Vec<TypeLabel>,
    values: Vec<Described>,
    properties: Vec<PropertyView>,
}

struct PropertyView {
    name: String,
    schema: TypeLabel,
    required: bool,
    description: Rich,
}

/// A schema in words, with links to the named schemas it uses.
#[derive(Default)]
struct TypeLabel {
    parts: Vec<Part>,
}

struct Part {
    text: String,
    /// The anchor of a named schema.
    link: Option<String>,
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn paragraphs(raw: &str) -> Vec<Rich> {
    raw.split("\n\n")
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty())
        .map(|p| Rich::new(&p))
        .collect()
}

/// One paragraph (line breaks within it are spaces).
fn rich(v: &Value, key: &str) -> Rich {
    Rich::new(
        &text(v, key)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
    )
}

fn schema_anchor(name: &str) -> String {
    format!("schema-{name}")
}

/// `#/components/<kind>/<name>` → `name`.
fn ref_name(v: &Value) -> Option<&str> {
    v.get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.rsplit('/').next())
}

impl TypeLabel {
    fn of(schema: &Value) -> Self {
        let mut label = Self::default();
        label.push_schema(schema);
        label
    }

    fn text(&mut self, text: impl Into<String>) {
        self.parts.push(Part {
            text: text.into(),
            link: None,
        });
    }

    fn push_schema(&mut self, schema: &Value) {
        if let Some(name) = ref_name(schema) {
            self.parts.push(Part {
                text: name.to_owned(),
                link: Some(schema_anchor(name)),
            });
            return;
        }
        for (key, joiner) in [("oneOf", " or "), ("anyOf", " or "), ("allOf", " and ")] {
            if let Some(list) = schema.get(key).and_then(Value::as_array) {
                for (i, member) in list.iter().enumerate() {
                    if i > 0 {
                        self.text(joiner);
                    }
                    self.push_schema(member);
                }
                return;
            }
        }
        let types: Vec<&str> = match schema.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if types.is_empty() {
            self.text("any");
        }
        for (i, kind) in types.iter().enumerate() {
            if i > 0 {
                self.text(" or ");
            }
            match *kind {
                "array" => {
                    self.text("array of ");
                    self.push_schema(schema.get("items").unwrap_or(&Value::Null));
                }
                "object" => match schema.get("additionalProperties") {
                    Some(values @ Value::Object(_)) => {
                        self.text("map of string to ");
                        self.push_schema(values);
                    }
                    _ => self.text("object"),
                },
                other => {
                    let format = schema.get("format").and_then(Value::as_str);
                    self.text(match format {
                        Some(format) => format!("{other} ({format})"),
                        None => other.to_owned(),
                    });
                }
            }
        }
        if let Some(values) = schema.get("enum").and_then(Value::as_array) {
            let values: Vec<String> = values.iter().map(Value::to_string).collect();
            self.text(format!(": one of {}", values.join(", ")));
        }
        match (schema.get("minimum"), schema.get("maximum")) {
            (Some(min), Some(max)) => self.text(format!(", {min}–{max}")),
            (Some(min), None) => self.text(format!(", ≥ {min}")),
            (None, Some(max)) => self.text(format!(", ≤ {max}")),
            (None, None) => {}
        }
    }
}

impl DocsPage {
    fn from_document(
        doc: &Value,
        paths: &[(String, Value)],
        declared: &HashMap<String, Vec<String>>,
    ) -> Self {
        let info = &doc["info"];
        let schemes = doc["components"]["securitySchemes"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let security = schemes
            .iter()
            .map(|(name, scheme)| Described {
                name: name.clone(),
                description: Rich::new(&match text(scheme, "type").as_str() {
                    "http" => format!(
                        "HTTP {} ({}): {}",
                        text(scheme, "scheme"),
                        text(scheme, "bearerFormat"),
                        text(scheme, "description")
                    ),
                    "apiKey" => format!(
                        "`{}` in the {}: {}",
                        text(scheme, "name"),
                        text(scheme, "in"),
                        text(scheme, "description")
                    ),
                    other => other.to_owned(),
                }),
            })
            .collect();
        let mut tags: Vec<TagSection> = doc["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|tag| TagSection {
                name: text(tag, "name"),
                description: rich(tag, "description"),
                operations: Vec::new(),
            })
            .collect();
        for (path, item) in paths {
            for method in METHODS {
                let Some(operation) = item.get(method) else {
                    continue;
                };
                let tag = operation["tags"][0].as_str().unwrap_or("other").to_owned();
                let view = OperationView::new(doc, method, path, operation);
                match tags.iter_mut().find(|t| t.name == tag) {
                    Some(section) => section.operations.push(view),
                    None => tags.push(TagSection {
                        name: tag,
                        description: Rich::default(),
                        operations: vec![view],
                    }),
                }
            }
        }
        tags.retain(|t| !t.operations.is_empty());
        let schemas = doc["components"]["schemas"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, schema)| {
                SchemaView::new(name, schema, declared.get(name).map_or(&[], Vec::as_slice))
            })
            .collect();
        Self {
            title: text(info, "title"),
            version: text(info, "version"),
            openapi: text(doc, "openapi"),
            description: paragraphs(&text(info, "description")),
            security,
            tags,
            schemas,
        }
    }
}

impl OperationView {
    fn new(doc: &Value, method: &str, path: &str, operation: &Value) -> Self {
        let auth: Vec<String> = operation["security"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_object)
            .flat_map(|requirement| requirement.keys().cloned())
            .collect();
        let parameters = operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| ParameterView {
                name: text(p, "name"),
                location: text(p, "in"),
                required: p["required"].as_bool().unwrap_or(false),
                schema: TypeLabel::of(&p["schema"]),
                description: rich(p, "description"),
            })
            .collect();
        let request_body = operation
            .get("requestBody")
            .and_then(|body| BodyView::first(body, body["required"].as_bool().unwrap_or(false)));
        let responses = operation["responses"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(status, response)| {
                // A reusable response: show what it says, not the reference.
                let response = ref_name(response)
                    .and_then(|name| doc["components"]["responses"].get(name))
                    .unwrap_or(response);
                ResponseView {
                    status: status.clone(),
                    description: rich(response, "description"),
                    body: BodyView::first(response, true),
                    headers: response["headers"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(name, _)| name.clone())
                        .collect(),
                }
            })
            .collect();
        Self {
            anchor: format!("op-{}", text(operation, "operationId")),
            method: method.to_uppercase(),
            path: path.to_owned(),
            summary: text(operation, "summary"),
            description: paragraphs(&text(operation, "description")),
            auth: if auth.is_empty() {
                "none".to_owned()
            } else {
                auth.join(" or ")
            },
            parameters,
            request_body,
            responses,
        }
    }
}

impl BodyView {
    /// The first content type of a request body or response, if it has one.
    fn first(holder: &Value, required: bool) -> Option<Self> {
        let (content_type, media) = holder["content"].as_object()?.iter().next()?;
        Some(Self {
            content_type: content_type.clone(),
            schema: TypeLabel::of(&media["schema"]),
            required,
        })
    }
}

impl SchemaView {
    fn new(name: &str, schema: &Value, declared: &[String]) -> Self {
        let mut includes = Vec::new();
        let mut objects = vec![schema];
        if let Some(members) = schema["allOf"].as_array() {
            for member in members {
                if ref_name(member).is_some() {
                    includes.push(TypeLabel::of(member));
                } else {
                    objects.push(member);
                }
            }
        }
        let mut properties = Vec::new();
        for object in objects {
            let required: Vec<&str> = object["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            for (property, value) in object["properties"].as_object().into_iter().flatten() {
                properties.push(PropertyView {
                    name: property.clone(),
                    schema: TypeLabel::of(value),
                    required: required.contains(&property.as_str()),
                    description: rich(value, "description"),
                });
            }
        }
        properties.sort_by_key(|p| declared.iter().position(|d| *d == p.name));
        // A string enum whose variants carry descriptions is a `oneOf` of one-value enums.
        let values: Vec<Described> = schema["oneOf"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|variant| {
                let value = variant["enum"].as_array()?.first()?.as_str()?;
                Some(Described {
                    name: value.to_owned(),
                    description: rich(variant, "description"),
                })
            })
            .collect();
        let shape = (properties.is_empty() && includes.is_empty() && values.is_empty())
            .then(|| TypeLabel::of(schema));
        Self {
            name: name.to_owned(),
            anchor: schema_anchor(name),
            description: rich(schema, "description"),
            shape,
            includes,
            values,
            properties,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route the app registers (`app.rs`'s `configure` calls), by method and path.
    const ROUTES: &[(&str, &str)] = &[
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
        ("post", "/api/integrations/stripe/connect"),
        ("get", "/api/integrations/stripe/connections"),
        ("delete", "/api/integrations/stripe/connections/{id}"),
        ("get", "/api/integrations/stripe/callback"),
        ("get", "/api/matching/review"),
        ("get", "/api/matching/customers/{stripe_customer_id}"),
        (
            "post",
            "/api/matching/customers/{stripe_customer_id}/decision",
        ),
        ("get", "/api/alerts/rules"),
        ("post", "/api/alerts/rules"),
        ("delete", "/api/alerts/rules/{rule_id}"),
        ("get", "/api/alerts"),
        ("put", "/api/alerts/webhook"),
        ("get", "/api/alerts/webhook"),
        ("delete", "/api/alerts/webhook"),
        ("get", "/api/stripe/customer/{customer_id}"),
        ("get", "/api/stripe/subscriptions/{customer_id}"),
        ("get", "/api/stripe/invoices/{customer_id}"),
        ("get", "/api/stripe/mrr/{customer_id}"),
        ("get", "/api/stripe/signals/{customer_id}"),
        ("get", "/api/stripe/revenue-at-risk"),
        ("post", "/api/stripe/chat"),
        ("post", "/api/chat/commands"),
        ("get", "/ui/accounts/{customer_id}"),
        ("get", "/ui/assets/widget.css"),
        ("get", "/api/openapi.json"),
        ("get", "/api/docs"),
        ("get", "/api/docs.css"),
    ];

    fn document() -> Value {
        serde_json::from_str(&DOCUMENT).expect("the document is JSON")
    }

    fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
        let mut found = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in METHODS {
                if let Some(op) = item.get(method) {
                    found.push((method.to_owned(), path.clone(), op));
                }
            }
        }
        found
    }

    #[test]
    fn the_document_is_openapi_3_and_has_every_route_and_nothing_else() {
        let doc = document();
        assert!(
            doc["openapi"].as_str().unwrap().starts_with("3."),
            "{}",
            doc["openapi"]
        );
        let mut documented: Vec<(String, String)> = operations(&doc)
            .into_iter()
            .map(|(method, path, _)| (method, path))
            .collect();
        let mut routes: Vec<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        documented.sort();
        routes.sort();
        assert_eq!(documented, routes);
    }

    #[test]
    fn operations_are_unique_tagged_summarised_and_secured_where_the_code_is() {
        let doc = document();
        let mut ids = std::collections::BTreeSet::new();
        for (method, path, op) in operations(&doc) {
            let id = op["operationId"].as_str().unwrap();
            assert!(ids.insert(id.to_owned()), "operationId {id} twice");
            assert!(op["tags"][0].is_string(), "{method} {path}: no tag");
            assert!(op["summary"].is_string(), "{method} {path}: no summary");
            let secured = op.get("security").is_some();
            let public = !path.starts_with("/api/") && !path.starts_with("/ui/accounts/")
                || path.starts_with("/api/docs")
                || path == "/api/openapi.json"
                || path == "/api/integrations/stripe/callback";
            assert_eq!(secured, !public, "{method} {path}: security");
            if secured {
                // Every handler behind a token: the token can be missing, and it is limited.
                for status in ["401", "429"] {
                    assert!(
                        op["responses"].get(status).is_some(),
                        "{method} {path}: no {status}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_reference_resolves_and_errors_have_the_api_error_shape() {
        let doc = document();
        fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
            match v {
                Value::Object(map) => {
                    if let Some(Value::String(r)) = map.get("$ref") {
                        out.push(r);
                    }
                    map.values().for_each(|v| refs(v, out));
                }
                Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(found.len() > 50, "{}", found.len());
        for r in found {
            let pointer = r.strip_prefix('#').expect("a local reference");
            assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
        }
        let error = &doc["components"]["schemas"]["ErrorDetail"];
        assert_eq!(error["required"], serde_json::json!(["code", "message"]));
        let body = serde_json::to_value(ErrorBody {
            error: crate::error::ErrorDetail {
                code: crate::error::ErrorCode::RateLimited,
                message: "m".into(),
            },
        })
        .unwrap();
        assert_eq!(
            body,
            serde_json::json!({ "error": { "code": "rate_limited", "message": "m" } })
        );
        let limited = &doc["components"]["responses"]["RateLimited"];
        assert!(limited["headers"]["Retry-After"].is_object(), "{limited}");
    }

    #[test]
    fn the_page_lists_every_operation() {
        let page = PAGE.as_ref().expect("the page renders");
        for (method, path) in ROUTES {
            assert!(page.contains(&format!(">{}<", method.to_uppercase())));
            assert!(
                page.contains(&format!(">{path}<")),
                "{path} not on the page"
            );
        }
        assert!(!page.contains("<script"), "the page has a script");
        assert!(page.contains("id=\"schema-Invoice\""));
    }
}
