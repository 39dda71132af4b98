//! The `/v1` API and Connect OAuth: auth, rate limit, faults, idempotency, routing.

use crate::engine::{self, Ctx, ItemChange, PayMode, SubUpdate};
use crate::error::ApiError;
use crate::model::*;
use crate::query::{PVal, Params};
use crate::render::{self, Legacy, RenderOpts};
use crate::server::App;
use crate::store::{Book, Collection, Grant, IdemEntry, PageQuery, State};
use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use std::sync::Arc;

/// Who is calling and on which account.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key: String,
    pub account: String,
    pub read_only: bool,
    pub connected: bool,
}

pub type Reply = Result<(u16, Vec<u8>), ApiError>;

fn json_response(status: u16, body: Vec<u8>, request_id: &str) -> HttpResponse {
    HttpResponse::build(
        actix_web::http::StatusCode::from_u16(status).unwrap_or(actix_web::http::StatusCode::OK),
    )
    .insert_header(("Content-Type", "application/json"))
    .insert_header(("Stripe-Version", API_VERSION))
    .insert_header(("Request-Id", request_id.to_string()))
    .body(body)
}

pub fn error_response(e: &ApiError, request_id: &str) -> HttpResponse {
    json_response(e.status, e.to_json().into_bytes(), request_id)
}

/// Entry point for every request that is not `/_admin`.
pub async fn handle(req: HttpRequest, body: web::Bytes, app: web::Data<Arc<App>>) -> HttpResponse {
    let app: &App = &app;
    let request_id = app.next_request_id();
    let path = req.path().to_string();
    if path.starts_with("/_admin") {
        return crate::admin::handle(app, &req, &body).await;
    }
    if path.starts_with("/oauth/") {
        if !app.limiter.try_acquire() {
            return error_response(&ApiError::rate_limited(), &request_id);
        }
        return crate::oauth::handle(app, &req, &body, &request_id);
    }
    if !path.starts_with("/v1/") && path != "/v1" {
        return error_response(
            &ApiError::unrecognized_url(req.method().as_str(), &path),
            &request_id,
        );
    }
    if !app.limiter.try_acquire() {
        return error_response(&ApiError::rate_limited(), &request_id);
    }
    let latency = app.latency_ms.load(std::sync::atomic::Ordering::Relaxed);
    if latency > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(latency)).await;
    }
    if let Some(status) = app.faults.pick() {
        return error_response(&ApiError::api_error(status), &request_id);
    }
    match serve_v1(app, &req, &body, &request_id) {
        Ok((status, body, replayed)) => {
            let mut r = json_response(status, body, &request_id);
            if replayed {
                r.headers_mut().insert(
                    actix_web::http::header::HeaderName::from_static("idempotent-replayed"),
                    actix_web::http::header::HeaderValue::from_static("true"),
                );
            }
            r
        }
        Err(e) => error_response(&e, &request_id),
    }
}

/// Extracts the API key from `Authorization: Bearer …` or `Basic base64(key:)`.
pub fn api_key(req: &HttpRequest) -> Option<String> {
    let h = req.headers().get("authorization")?.to_str().ok()?.trim();
    if let Some(k) = h
        .strip_prefix("Bearer ")
        .or_else(|| h.strip_prefix("bearer "))
    {
        let k = k.trim();
        return (!k.is_empty()).then(|| k.to_string());
    }
    if let Some(b) = h
        .strip_prefix("Basic ")
        .or_else(|| h.strip_prefix("basic "))
    {
        let raw = base64_decode(b.trim())?;
        let s = String::from_utf8(raw).ok()?;
        let user = s.split(':').next().unwrap_or("");
        return (!user.is_empty()).then(|| user.to_string());
    }
    None
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut buf = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            _ => return None,
        };
        buf = (buf << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Resolves the key and `Stripe-Account` header to a caller.
pub fn authenticate(app: &App, state: &State, req: &HttpRequest) -> Result<Caller, ApiError> {
    let key = api_key(req).ok_or_else(ApiError::no_key)?;
    let header_account = req
        .headers()
        .get("stripe-account")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    if app.config.api_keys.iter().any(|k| k == &key) {
        let read_only = key.starts_with("rk_");
        let account = match header_account {
            None => state.platform.clone(),
            Some(a) if a == state.platform => a,
            Some(a) => {
                if !state.books.contains_key(&a) || state.revoked_accounts.contains(&a) {
                    return Err(ApiError::account_access(&key, &a));
                }
                a
            }
        };
        let connected = account != state.platform;
        return Ok(Caller {
            key,
            account,
            read_only,
            connected,
        });
    }
    if let Some(g) = state.grants.get(&key) {
        if let Some(a) = &header_account {
            if a != &g.account {
                return Err(ApiError::account_access(&key, a));
            }
        }
        if state.revoked_accounts.contains(&g.account) {
            return Err(ApiError::bad_key(&key));
        }
        return Ok(Caller {
            key: key.clone(),
            account: g.account.clone(),
            read_only: g.read_only,
            connected: true,
        });
    }
    Err(ApiError::bad_key(&key))
}

fn serve_v1(
    app: &App,
    req: &HttpRequest,
    body: &[u8],
    request_id: &str,
) -> Result<(u16, Vec<u8>, bool), ApiError> {
    let method = req.method().clone();
    let path = req.path();
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let mut params = Params::parse(req.query_string());
    if method != Method::GET {
        params.merge(&String::from_utf8_lossy(body));
    }
    if method == Method::GET || method == Method::HEAD {
        let state = app.state.read();
        let caller = authenticate(app, &state, req)?;
        let book = state
            .books
            .get(&caller.account)
            .ok_or_else(|| ApiError::account_access(&caller.key, &caller.account))?;
        let (s, b) = get_route(app, &state, book, &caller, &segs, &params, path)?;
        return Ok((s, b, false));
    }
    if method != Method::POST && method != Method::DELETE {
        return Err(ApiError::unrecognized_url(method.as_str(), path));
    }
    let mut guard = app.state.write();
    let state: &mut State = &mut guard;
    let caller = authenticate(app, state, req)?;
    if caller.read_only {
        return Err(ApiError::read_only_key(
            &caller.key,
            &caller.account,
            &permission_for(&segs),
        ));
    }
    let idem_key = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let fingerprint = format!(
        "{} {}?{}\n{}",
        method,
        path,
        req.query_string(),
        String::from_utf8_lossy(body)
    );
    if let Some(k) = &idem_key {
        if let Some(prev) = state.idempotency.get(&(caller.account.clone(), k.clone())) {
            if prev.fingerprint == fingerprint {
                return Ok((prev.status, prev.body.clone().into_bytes(), true));
            }
            return Err(ApiError::idempotency(k));
        }
    }
    let result = post_route(
        app,
        state,
        &caller,
        &method,
        &segs,
        &params,
        path,
        request_id,
        idem_key.as_deref(),
    );
    if let Some(k) = idem_key {
        let (status, body) = match &result {
            Ok((s, b)) => (*s, String::from_utf8_lossy(b).into_owned()),
            Err(e) => (e.status, e.to_json()),
        };
        if status < 500 && status != 429 {
            state.idempotency.insert(
                (caller.account.clone(), k),
                IdemEntry {
                    fingerprint,
                    status,
                    body,
                },
            );
        }
    }
    result.map(|(s, b)| (s, b, false))
}

fn permission_for(segs: &[&str]) -> String {
    let resource = segs.get(1).copied().unwrap_or("resource");
    format!("rak_{}_write", resource.trim_end_matches('s'))
}

// ------------------------------------------------------------------ GET

const PAGING: &[&str] = &[
    "limit",
    "starting_after",
    "ending_before",
    "created",
    "expand",
];

fn page_query(p: &Params, extra: &[&str]) -> Result<PageQuery, ApiError> {
    for k in p.root.keys() {
        if !PAGING.contains(&k.as_str()) && !extra.contains(&k.as_str()) {
            return Err(ApiError::unknown_param(k));
        }
    }
    let limit = p.int("limit")?.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        let bound = if limit < 1 {
            "greater than or equal to 1"
        } else {
            "less than or equal to 100"
        };
        return Err(ApiError::invalid(
            "parameter_invalid_integer",
            "limit",
            format!("This value must be {bound}."),
        ));
    }
    let starting_after = p
        .string("starting_after")?
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let ending_before = p
        .string("ending_before")?
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    if starting_after.is_some() && ending_before.is_some() {
        return Err(ApiError::invalid(
            "parameters_exclusive",
            "ending_before",
            "You may only specify one of these parameters: ending_before, starting_after.",
        ));
    }
    Ok(PageQuery {
        limit: limit as usize,
        starting_after,
        ending_before,
        created: p.range("created")?,
    })
}

#[allow(clippy::too_many_arguments)]
fn list<T: StripeObject + Legacy>(
    app: &App,
    book: &Book,
    coll: &Collection<T>,
    p: &Params,
    extra: &[&str],
    url: &str,
    customer: Option<&str>,
    filter: impl Fn(&T) -> bool,
) -> Reply {
    let q = page_query(p, extra)?;
    let expand = p.expand()?;
    let page = coll.page(&q, customer, filter)?;
    let body = render::list(book, &page, url, &expand, opts(app))?;
    Ok((200, body))
}

fn opts(app: &App) -> RenderOpts {
    RenderOpts {
        legacy: app.config.legacy_fields,
    }
}

fn retrieve<T: StripeObject + Legacy>(
    app: &App,
    book: &Book,
    coll: &Collection<T>,
    id: &str,
    p: &Params,
) -> Reply {
    p.check_allowed(&["expand"])?;
    let entry = coll
        .entry(id)
        .ok_or_else(|| ApiError::missing(T::OBJECT, id, "id"))?;
    let expand = p.expand()?;
    if expand.is_empty() && !app.config.legacy_fields {
        return Ok((200, entry.json().to_vec()));
    }
    Ok((200, render::object(book, &entry.obj, &expand, opts(app))?))
}

fn opt_str<'a>(p: &'a Params, k: &str) -> Result<Option<&'a str>, ApiError> {
    Ok(p.string(k)?.filter(|s| !s.is_empty()))
}

fn get_route(
    app: &App,
    state: &State,
    book: &Book,
    caller: &Caller,
    segs: &[&str],
    p: &Params,
    path: &str,
) -> Reply {
    match segs {
        ["v1", "account"] => {
            p.check_allowed(&["expand"])?;
            Ok((200, render::object(book, &book.account, &[], opts(app))?))
        }
        ["v1", "accounts"] => {
            if caller.connected {
                return Ok((
                    200,
                    br#"{"object":"list","data":[],"has_more":false,"url":"/v1/accounts"}"#
                        .to_vec(),
                ));
            }
            let q = page_query(p, &[])?;
            let mut accts: Vec<&Account> = state
                .books
                .values()
                .filter(|b| {
                    b.account.id != state.platform
                        && !state.revoked_accounts.contains(&b.account.id)
                })
                .map(|b| &b.account)
                .collect();
            accts.sort_by(|a, b| (b.created, &b.id).cmp(&(a.created, &a.id)));
            let mut coll: Collection<Account> = Collection::default();
            for a in accts {
                coll.insert(a.clone());
            }
            let page = coll.page(&q, None, |_| true)?;
            Ok((
                200,
                render::list(book, &page, "/v1/accounts", &p.expand()?, opts(app))?,
            ))
        }
        ["v1", "accounts", id] => {
            p.check_allowed(&["expand"])?;
            let b = state
                .books
                .get(*id)
                .filter(|_| {
                    (*id == caller.account)
                        || (!caller.connected && !state.revoked_accounts.contains(*id))
                })
                .ok_or_else(|| ApiError::missing("account", id, "account"))?;
            Ok((200, render::object(b, &b.account, &[], opts(app))?))
        }
        ["v1", "customers"] => {
            let email = opt_str(p, "email")?;
            list(
                app,
                book,
                &book.customers,
                p,
                &["email"],
                "/v1/customers",
                None,
                |c| email.is_none_or(|e| c.email.as_deref() == Some(e)),
            )
        }
        ["v1", "customers", id] => retrieve(app, book, &book.customers, id, p),
        ["v1", "customers", id, "payment_methods"] => {
            if !book.customers.contains(id) {
                return Err(ApiError::missing("customer", id, "customer"));
            }
            let kind = opt_str(p, "type")?;
            if kind.is_some_and(|k| k != "card") {
                return Ok((200, empty_list(path)));
            }
            list(
                app,
                book,
                &book.payment_methods,
                p,
                &["type", "allow_redisplay"],
                path,
                Some(id),
                |_| true,
            )
        }
        ["v1", "products"] => {
            let active = p.bool("active")?;
            list(
                app,
                book,
                &book.products,
                p,
                &["active", "ids", "shippable", "url"],
                "/v1/products",
                None,
                |x| active.is_none_or(|a| x.active == a),
            )
        }
        ["v1", "products", id] => retrieve(app, book, &book.products, id, p),
        ["v1", "prices"] => {
            let active = p.bool("active")?;
            let product = opt_str(p, "product")?;
            let currency = opt_str(p, "currency")?;
            let kind = opt_str(p, "type")?;
            list(
                app,
                book,
                &book.prices,
                p,
                &[
                    "active",
                    "product",
                    "currency",
                    "type",
                    "lookup_keys",
                    "recurring",
                ],
                "/v1/prices",
                None,
                |x| {
                    active.is_none_or(|a| x.active == a)
                        && product.is_none_or(|v| x.product == v)
                        && currency.is_none_or(|v| x.currency == v)
                        && kind.is_none_or(|v| x.kind == v)
                },
            )
        }
        ["v1", "prices", id] => retrieve(app, book, &book.prices, id, p),
        ["v1", "coupons"] => list(
            app,
            book,
            &book.coupons,
            p,
            &[],
            "/v1/coupons",
            None,
            |_| true,
        ),
        ["v1", "coupons", id] => retrieve(app, book, &book.coupons, id, p),
        ["v1", "subscriptions"] => {
            let customer = opt_str(p, "customer")?;
            let price = opt_str(p, "price")?;
            let status = opt_str(p, "status")?.unwrap_or("");
            let status_ok: Box<dyn Fn(&str) -> bool> = match status {
                "" => Box::new(|s| s != "canceled"),
                "all" => Box::new(|_| true),
                "ended" => Box::new(|s| s == "canceled" || s == "incomplete_expired"),
                other => {
                    let st = sub_status(other).ok_or_else(|| {
                        ApiError::invalid(
                            "parameter_invalid_string",
                            "status",
                            "Invalid status: must be one of active, all, canceled, ended, incomplete, incomplete_expired, past_due, paused, trialing, or unpaid",
                        )
                    })?;
                    Box::new(move |s| s == st)
                }
            };
            let extra = [
                "customer",
                "price",
                "status",
                "collection_method",
                "current_period_end",
                "current_period_start",
                "test_clock",
                "automatic_tax",
            ];
            list(
                app,
                book,
                &book.subscriptions,
                p,
                &extra,
                "/v1/subscriptions",
                customer,
                |s| {
                    status_ok(s.status)
                        && price.is_none_or(|pr| s.items.data.iter().any(|i| i.price.id == pr))
                },
            )
        }
        ["v1", "subscriptions", id] => retrieve(app, book, &book.subscriptions, id, p),
        ["v1", "subscription_items"] => {
            let sub_id = p.required("subscription")?;
            let sub = book
                .subscriptions
                .get(sub_id)
                .ok_or_else(|| ApiError::missing("subscription", sub_id, "subscription"))?;
            let q = page_query(p, &["subscription"])?;
            let mut items: Collection<SubItemRow> = Collection::default();
            for it in &sub.items.data {
                items.insert(SubItemRow(it.clone()));
            }
            let page = items.page(&q, None, |_| true)?;
            Ok((
                200,
                render::list(
                    book,
                    &page,
                    "/v1/subscription_items",
                    &p.expand()?,
                    opts(app),
                )?,
            ))
        }
        ["v1", "subscription_items", id] => {
            p.check_allowed(&["expand"])?;
            let item = book
                .subscriptions
                .values()
                .flat_map(|s| s.items.data.iter())
                .find(|i| i.id == *id)
                .ok_or_else(|| ApiError::missing("subscription_item", id, "id"))?;
            Ok((200, serde_json::to_vec(item).unwrap_or_default()))
        }
        ["v1", "invoices"] => {
            let customer = opt_str(p, "customer")?;
            let subscription = opt_str(p, "subscription")?;
            let status = match opt_str(p, "status")? {
                None => None,
                Some(s) => Some(
                    INVOICE_STATUSES
                        .iter()
                        .copied()
                        .find(|x| *x == s)
                        .ok_or_else(|| {
                            ApiError::invalid(
                        "parameter_invalid_string",
                        "status",
                        "Invalid status: must be one of draft, open, paid, uncollectible, or void",
                    )
                        })?,
                ),
            };
            let collection = opt_str(p, "collection_method")?;
            let due = p.range("due_date")?;
            list(
                app,
                book,
                &book.invoices,
                p,
                &[
                    "customer",
                    "subscription",
                    "status",
                    "collection_method",
                    "due_date",
                ],
                "/v1/invoices",
                customer,
                |i| {
                    subscription.is_none_or(|s| i.subscription.as_deref() == Some(s))
                        && status.is_none_or(|s| i.status == s)
                        && collection.is_none_or(|c| i.collection_method == c)
                        && (due.is_empty() || i.due_date.is_some_and(|d| due.contains(d)))
                },
            )
        }
        ["v1", "invoices", id] => retrieve(app, book, &book.invoices, id, p),
        ["v1", "invoices", id, "lines"] => {
            let inv = book
                .invoices
                .get(id)
                .ok_or_else(|| ApiError::missing("invoice", id, "invoice"))?;
            let q = page_query(p, &[])?;
            let mut lines: Collection<LineRow> = Collection::default();
            for (n, l) in inv.lines.data.iter().enumerate() {
                lines.insert(LineRow(l.clone(), n as i64));
            }
            let page = lines.page(&q, None, |_| true)?;
            Ok((
                200,
                render::list(book, &page, path, &p.expand()?, opts(app))?,
            ))
        }
        // Basil's InvoicePayment: `?invoice=` lists one invoice's payments (at most one here).
        ["v1", "invoice_payments"] => {
            p.check_allowed(&[
                "invoice",
                "limit",
                "starting_after",
                "ending_before",
                "expand",
            ])?;
            let id = p.required("invoice")?;
            let inv = book
                .invoices
                .get(id)
                .ok_or_else(|| ApiError::missing("invoice", id, "invoice"))?;
            let body = render::invoice_payments(book, inv);
            Ok((
                200,
                serde_json::to_vec(&body).map_err(|_| ApiError::api_error(500))?,
            ))
        }
        ["v1", "charges"] => {
            let customer = opt_str(p, "customer")?;
            let pi = opt_str(p, "payment_intent")?;
            list(
                app,
                book,
                &book.charges,
                p,
                &["customer", "payment_intent", "transfer_group"],
                "/v1/charges",
                customer,
                |c| pi.is_none_or(|v| c.payment_intent.as_deref() == Some(v)),
            )
        }
        ["v1", "charges", id] => retrieve(app, book, &book.charges, id, p),
        ["v1", "payment_intents"] => {
            let customer = opt_str(p, "customer")?;
            list(
                app,
                book,
                &book.payment_intents,
                p,
                &["customer"],
                "/v1/payment_intents",
                customer,
                |_| true,
            )
        }
        ["v1", "payment_intents", id] => retrieve(app, book, &book.payment_intents, id, p),
        ["v1", "payment_methods"] => {
            let customer = opt_str(p, "customer")?;
            let kind = opt_str(p, "type")?;
            if kind.is_some_and(|k| k != "card") {
                return Ok((200, empty_list("/v1/payment_methods")));
            }
            list(
                app,
                book,
                &book.payment_methods,
                p,
                &["customer", "type", "allow_redisplay"],
                "/v1/payment_methods",
                customer,
                |_| true,
            )
        }
        ["v1", "payment_methods", id] => retrieve(app, book, &book.payment_methods, id, p),
        ["v1", "disputes"] => {
            let charge = opt_str(p, "charge")?;
            let pi = opt_str(p, "payment_intent")?;
            list(
                app,
                book,
                &book.disputes,
                p,
                &["charge", "payment_intent"],
                "/v1/disputes",
                None,
                |d| {
                    charge.is_none_or(|c| d.charge == c)
                        && pi.is_none_or(|v| d.payment_intent.as_deref() == Some(v))
                },
            )
        }
        ["v1", "disputes", id] => retrieve(app, book, &book.disputes, id, p),
        ["v1", "events"] => {
            let kind = opt_str(p, "type")?;
            let types: Vec<String> = match p.get("types") {
                None => vec![],
                Some(v) => v
                    .as_list()
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect(),
            };
            if kind.is_some() && !types.is_empty() {
                return Err(ApiError::invalid(
                    "parameters_exclusive",
                    "types",
                    "You may only specify one of these parameters: type, types.",
                ));
            }
            let matches = |pattern: &str, t: &str| match pattern.strip_suffix('*') {
                Some(prefix) => t.starts_with(prefix),
                None => pattern == t,
            };
            list(
                app,
                book,
                &book.events,
                p,
                &["type", "types", "delivery_success"],
                "/v1/events",
                None,
                |e| {
                    kind.is_none_or(|k| matches(k, &e.kind))
                        && (types.is_empty() || types.iter().any(|t| matches(t, &e.kind)))
                },
            )
        }
        ["v1", "events", id] => retrieve(app, book, &book.events, id, p),
        _ => Err(ApiError::unrecognized_url("GET", path)),
    }
}

fn empty_list(url: &str) -> Vec<u8> {
    serde_json::json!({"object": "list", "data": [], "has_more": false, "url": url})
        .to_string()
        .into_bytes()
}

/// A subscription item listed on its own (it has no `customer`).
#[derive(serde::Serialize)]
#[serde(transparent)]
struct SubItemRow(SubscriptionItem);
impl StripeObject for SubItemRow {
    const OBJECT: &'static str = "subscription_item";
    fn id(&self) -> &str {
        &self.0.id
    }
    fn created(&self) -> i64 {
        self.0.created
    }
}
impl Legacy for SubItemRow {}

/// Invoice lines keep invoice order, so the sort key is their position (reversed).
struct LineRow(InvoiceLine, i64);
impl serde::Serialize for LineRow {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}
impl StripeObject for LineRow {
    const OBJECT: &'static str = "line_item";
    fn id(&self) -> &str {
        &self.0.id
    }
    fn created(&self) -> i64 {
        -self.1
    }
}
impl Legacy for LineRow {}

// ------------------------------------------------------------------ POST / DELETE

fn metadata(p: &Params, key: &str) -> Result<Option<Metadata>, ApiError> {
    match p.get(key) {
        None => Ok(None),
        Some(PVal::Str(s)) if s.is_empty() => Ok(Some(Metadata::new())),
        Some(PVal::Map(m)) => {
            let mut out = Metadata::new();
            for (k, v) in m {
                let v = v.as_str().ok_or_else(|| {
                    ApiError::invalid(
                        "parameter_invalid_string",
                        &format!("{key}[{k}]"),
                        "Metadata values must be strings.",
                    )
                })?;
                out.insert(k.clone(), v.to_string());
            }
            Ok(Some(out))
        }
        Some(_) => Err(ApiError::invalid(
            "parameter_invalid_hash",
            key,
            "Invalid hash",
        )),
    }
}

fn merge_metadata(target: &mut Metadata, update: Metadata) {
    if update.is_empty() {
        target.clear();
    }
    for (k, v) in update {
        if v.is_empty() {
            target.remove(&k);
        } else {
            target.insert(k, v);
        }
    }
}

fn int_in(v: &PVal, name: &str) -> Result<i64, ApiError> {
    let s = v
        .as_str()
        .ok_or_else(|| ApiError::invalid_integer(name, "(not a scalar)"))?;
    s.trim()
        .parse::<i64>()
        .map_err(|_| ApiError::invalid_integer(name, s))
}

fn expanded<T: StripeObject + Legacy>(app: &App, book: &Book, obj: &T, p: &Params) -> Reply {
    Ok((200, render::object(book, obj, &p.expand()?, opts(app))?))
}

#[allow(clippy::too_many_arguments)]
fn post_route(
    app: &App,
    state: &mut State,
    caller: &Caller,
    method: &Method,
    segs: &[&str],
    p: &Params,
    path: &str,
    request_id: &str,
    idem_key: Option<&str>,
) -> Reply {
    let now = state.now();
    let account_tag = caller.connected.then(|| caller.account.clone());
    let State { books, ids, .. } = state;
    let book = books
        .get_mut(&caller.account)
        .ok_or_else(|| ApiError::account_access(&caller.key, &caller.account))?;
    let mut ctx = Ctx::new(now, ids, account_tag);
    ctx.request_id = Some(request_id.to_string());
    ctx.idempotency_key = idem_key.map(str::to_string);
    let is_delete = method == Method::DELETE;
    let result = match (is_delete, segs) {
        (false, ["v1", "customers"]) => create_customer(app, book, &mut ctx, p),
        (false, ["v1", "customers", id]) => update_customer(app, book, &mut ctx, id, p),
        (true, ["v1", "customers", id]) => {
            p.check_allowed(&[])?;
            let c = book
                .customers
                .remove(id)
                .ok_or_else(|| ApiError::missing("customer", id, "id"))?;
            ctx.emit("customer.deleted", &c, None);
            Ok((
                200,
                serde_json::json!({"id": id, "object": "customer", "deleted": true})
                    .to_string()
                    .into_bytes(),
            ))
        }
        (false, ["v1", "products"]) => create_product(app, book, &mut ctx, p),
        (false, ["v1", "prices"]) => create_price(app, book, &mut ctx, p),
        (false, ["v1", "coupons"]) => create_coupon(app, book, &mut ctx, p),
        (false, ["v1", "subscriptions"]) => create_subscription(app, book, &mut ctx, p),
        (false, ["v1", "subscriptions", id]) => update_subscription(app, book, &mut ctx, id, p),
        (true, ["v1", "subscriptions", id]) => {
            p.check_allowed(&["invoice_now", "prorate", "cancellation_details", "expand"])?;
            engine::cancel_subscription(book, &mut ctx, id, "cancellation_requested")?;
            let sub = book
                .subscriptions
                .get(id)
                .ok_or_else(|| ApiError::missing("subscription", id, "id"))?;
            expanded(app, book, sub, p)
        }
        (false, ["v1", "payment_methods"]) => create_payment_method(app, book, &mut ctx, p),
        (false, ["v1", "payment_methods", id, "attach"]) => {
            attach_payment_method(app, book, &mut ctx, id, p)
        }
        (false, ["v1", "payment_methods", id, "detach"]) => {
            p.check_allowed(&["expand"])?;
            let pm = book
                .payment_methods
                .get(id)
                .ok_or_else(|| ApiError::missing("payment_method", id, "payment_method"))?;
            let mut pm = pm.clone();
            let before = engine::snap(&pm);
            pm.customer = None;
            let prev = render::previous_attributes(&before, &engine::snap(&pm));
            ctx.emit("payment_method.detached", &pm, prev);
            book.payment_methods.insert(pm.clone());
            expanded(app, book, &pm, p)
        }
        (false, ["v1", "payment_methods", id]) => {
            p.check_allowed(&[
                "card",
                "metadata",
                "billing_details",
                "expand",
                "allow_redisplay",
            ])?;
            if !book.payment_methods.contains(id) {
                return Err(ApiError::missing("payment_method", id, "id"));
            }
            let card = p.get("card");
            let month = card
                .and_then(|c| c.get("exp_month"))
                .map(|v| int_in(v, "card[exp_month]"))
                .transpose()?;
            let year = card
                .and_then(|c| c.get("exp_year"))
                .map(|v| int_in(v, "card[exp_year]"))
                .transpose()?;
            let (m0, y0) = book
                .payment_methods
                .get(id)
                .map(|p| (p.card.exp_month, p.card.exp_year))
                .unwrap_or((1, 2030));
            if month.is_some() || year.is_some() {
                engine::set_card_expiry(
                    book,
                    &mut ctx,
                    id,
                    month.unwrap_or(m0),
                    year.unwrap_or(y0),
                )?;
            }
            if let Some(m) = metadata(p, "metadata")? {
                if let Some(pm) = book.payment_methods.get_mut(id) {
                    merge_metadata(&mut pm.metadata, m);
                }
            }
            let pm = book
                .payment_methods
                .get(id)
                .ok_or_else(|| ApiError::missing("payment_method", id, "id"))?;
            expanded(app, book, pm, p)
        }
        (false, ["v1", "invoices", id, "pay"]) => {
            p.check_allowed(&[
                "paid_out_of_band",
                "payment_method",
                "off_session",
                "forgive",
                "expand",
                "source",
                "mandate",
            ])?;
            if !book.invoices.contains(id) {
                return Err(ApiError::missing("invoice", id, "id"));
            }
            if let Some(pm) = opt_str(p, "payment_method")? {
                if !book.payment_methods.contains(pm) {
                    return Err(ApiError::missing("payment_method", pm, "payment_method"));
                }
                if let Some(sub) = book.invoices.get(id).and_then(|i| i.subscription.clone()) {
                    if let Some(s) = book.subscriptions.get_mut(&sub) {
                        s.default_payment_method = Some(pm.to_string());
                    }
                }
            }
            let mode = if p.bool("paid_out_of_band")? == Some(true) {
                PayMode::Succeed
            } else {
                PayMode::Normal
            };
            match engine::attempt_payment(book, &mut ctx, id, mode) {
                Ok(()) => {
                    let inv = book
                        .invoices
                        .get(id)
                        .ok_or_else(|| ApiError::missing("invoice", id, "id"))?;
                    expanded(app, book, inv, p)
                }
                Err(e) => {
                    // Keep the recorded failure and its events, then answer the error.
                    let events = std::mem::take(&mut ctx.events);
                    drop(ctx);
                    app.commit(state, &caller.account, events);
                    return Err(e);
                }
            }
        }
        (false, ["v1", "invoices", id, "void"]) => {
            p.check_allowed(&["expand"])?;
            engine::void_invoice(book, &mut ctx, id)?;
            let inv = book
                .invoices
                .get(id)
                .ok_or_else(|| ApiError::missing("invoice", id, "id"))?;
            expanded(app, book, inv, p)
        }
        (false, ["v1", "invoices", id, "mark_uncollectible"]) => {
            p.check_allowed(&["expand"])?;
            engine::mark_uncollectible(book, &mut ctx, id)?;
            let inv = book
                .invoices
                .get(id)
                .ok_or_else(|| ApiError::missing("invoice", id, "id"))?;
            expanded(app, book, inv, p)
        }
        _ => Err(ApiError::unrecognized_url(method.as_str(), path)),
    };
    let events = std::mem::take(&mut ctx.events);
    drop(ctx);
    if result.is_ok() {
        app.commit(state, &caller.account, events);
    }
    result
}

fn create_customer(app: &App, book: &mut Book, ctx: &mut Ctx, p: &Params) -> Reply {
    p.check_allowed(&[
        "email",
        "name",
        "description",
        "metadata",
        "phone",
        "payment_method",
        "invoice_settings",
        "expand",
        "address",
        "preferred_locales",
        "invoice_prefix",
        "shipping",
        "tax_exempt",
    ])?;
    let id = ctx.ids.next("cus");
    let prefix = ctx.ids.token("", 8).to_uppercase();
    let mut c = Customer::new(id.clone(), ctx.now, prefix);
    apply_customer(book, &mut c, p)?;
    if let Some(pm) = opt_str(p, "payment_method")? {
        attach(book, ctx, pm, &id)?;
    }
    ctx.emit("customer.created", &c, None);
    book.customers.insert(c);
    let c = book
        .customers
        .get(&id)
        .ok_or_else(|| ApiError::missing("customer", &id, "id"))?;
    expanded(app, book, c, p)
}

fn apply_customer(book: &Book, c: &mut Customer, p: &Params) -> Result<(), ApiError> {
    if let Some(v) = p.string("email")? {
        c.email = (!v.is_empty()).then(|| v.to_string());
    }
    if let Some(v) = p.string("name")? {
        c.name = (!v.is_empty()).then(|| v.to_string());
    }
    if let Some(v) = p.string("description")? {
        c.description = (!v.is_empty()).then(|| v.to_string());
    }
    if let Some(v) = p.string("phone")? {
        c.phone = (!v.is_empty()).then(|| v.to_string());
    }
    if let Some(m) = metadata(p, "metadata")? {
        merge_metadata(&mut c.metadata, m);
    }
    if let Some(dpm) = p
        .get("invoice_settings")
        .and_then(|s| s.get("default_payment_method"))
    {
        let v = dpm.as_str().unwrap_or("");
        if v.is_empty() {
            c.invoice_settings.default_payment_method = None;
        } else {
            let pm = book.payment_methods.get(v).ok_or_else(|| {
                ApiError::missing(
                    "payment_method",
                    v,
                    "invoice_settings[default_payment_method]",
                )
            })?;
            if pm.customer.as_deref() != Some(c.id.as_str()) {
                return Err(ApiError::invalid(
                    "resource_missing",
                    "invoice_settings[default_payment_method]",
                    format!("The customer does not have a payment method with the ID {v}. The payment method must be attached to the customer."),
                ));
            }
            c.invoice_settings.default_payment_method = Some(v.to_string());
        }
    }
    Ok(())
}

fn update_customer(app: &App, book: &mut Book, ctx: &mut Ctx, id: &str, p: &Params) -> Reply {
    p.check_allowed(&[
        "email",
        "name",
        "description",
        "metadata",
        "phone",
        "invoice_settings",
        "expand",
        "address",
        "preferred_locales",
        "shipping",
        "tax_exempt",
        "default_source",
    ])?;
    let mut c = book
        .customers
        .get(id)
        .ok_or_else(|| ApiError::missing("customer", id, "id"))?
        .clone();
    let before = engine::snap(&c);
    apply_customer(book, &mut c, p)?;
    let after = engine::snap(&c);
    if let Some(prev) = render::previous_attributes(&before, &after) {
        ctx.emit_value("customer.updated", after, Some(prev));
    }
    book.customers.insert(c);
    let c = book
        .customers
        .get(id)
        .ok_or_else(|| ApiError::missing("customer", id, "id"))?;
    expanded(app, book, c, p)
}

fn create_product(app: &App, book: &mut Book, ctx: &mut Ctx, p: &Params) -> Reply {
    p.check_allowed(&[
        "name",
        "id",
        "description",
        "metadata",
        "active",
        "expand",
        "unit_label",
        "images",
        "tax_code",
        "url",
    ])?;
    let name = p.required("name")?.to_string();
    let id = match opt_str(p, "id")? {
        Some(id) if book.products.contains(id) => {
            return Err(ApiError::invalid(
                "resource_already_exists",
                "id",
                format!("Product already exists: {id}"),
            ))
        }
        Some(id) => id.to_string(),
        None => ctx.ids.next("prod"),
    };
    let mut prod = Product::new(id.clone(), name, ctx.now);
    prod.description = opt_str(p, "description")?.map(str::to_string);
    prod.unit_label = opt_str(p, "unit_label")?.map(str::to_string);
    if let Some(a) = p.bool("active")? {
        prod.active = a;
    }
    if let Some(m) = metadata(p, "metadata")? {
        prod.metadata = m;
    }
    ctx.emit("product.created", &prod, None);
    book.products.insert(prod);
    let prod = book
        .products
        .get(&id)
        .ok_or_else(|| ApiError::missing("product", &id, "id"))?;
    expanded(app, book, prod, p)
}

fn create_price(app: &App, book: &mut Book, ctx: &mut Ctx, p: &Params) -> Reply {
    p.check_allowed(&[
        "currency",
        "product",
        "product_data",
        "unit_amount",
        "unit_amount_decimal",
        "recurring",
        "nickname",
        "metadata",
        "lookup_key",
        "billing_scheme",
        "tiers_mode",
        "tiers",
        "active",
        "tax_behavior",
        "expand",
        "transfer_lookup_key",
    ])?;
    let currency = p.required("currency")?.to_lowercase();
    if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_lowercase()) {
        return Err(ApiError::invalid(
            "parameter_invalid_string",
            "currency",
            format!("Invalid currency: {currency}"),
        ));
    }
    let product = match (opt_str(p, "product")?, p.get("product_data")) {
        (Some(id), _) => {
            if !book.products.contains(id) {
                return Err(ApiError::missing("product", id, "product"));
            }
            id.to_string()
        }
        (None, Some(pd)) => {
            let name = pd
                .get("name")
                .and_then(PVal::as_str)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| ApiError::missing_param("product_data[name]"))?;
            let prod = Product::new(ctx.ids.next("prod"), name.to_string(), ctx.now);
            let id = prod.id.clone();
            ctx.emit("product.created", &prod, None);
            book.products.insert(prod);
            id
        }
        (None, None) => return Err(ApiError::missing_param("product")),
    };
    let unit_amount =
        match p.int("unit_amount")? {
            Some(a) => Some(a),
            None => match opt_str(p, "unit_amount_decimal")? {
                Some(d) => Some(d.split('.').next().unwrap_or("0").parse::<i64>().map_err(
                    |_| {
                        ApiError::invalid(
                            "parameter_invalid_decimal",
                            "unit_amount_decimal",
                            format!("Invalid decimal: {d}"),
                        )
                    },
                )?),
                None => None,
            },
        };
    if unit_amount.is_some_and(|a| a < 0) {
        return Err(ApiError::invalid(
            "parameter_invalid_integer",
            "unit_amount",
            "This value must be greater than or equal to 0.",
        ));
    }
    let recurring = match p.get("recurring") {
        None => None,
        Some(r) => {
            let interval = r
                .get("interval")
                .and_then(PVal::as_str)
                .ok_or_else(|| ApiError::missing_param("recurring[interval]"))?;
            let interval = Interval::parse(interval).ok_or_else(|| {
                ApiError::invalid(
                    "parameter_invalid_string",
                    "recurring[interval]",
                    "Invalid recurring[interval]: must be one of day, month, week, or year",
                )
            })?;
            let count = match r.get("interval_count") {
                Some(v) => int_in(v, "recurring[interval_count]")?,
                None => 1,
            };
            let max = match interval {
                Interval::Day => 365,
                Interval::Week => 52,
                Interval::Month => 12,
                Interval::Year => 1,
            };
            if !(1..=max).contains(&count) {
                return Err(ApiError::invalid(
                    "parameter_invalid_integer",
                    "recurring[interval_count]",
                    "The maximum billing interval is one year (1 year, 12 months, 52 weeks or 365 days).",
                ));
            }
            let usage_type = match r.get("usage_type").and_then(PVal::as_str) {
                None | Some("licensed") => "licensed",
                Some("metered") => "metered",
                Some(o) => {
                    return Err(ApiError::invalid(
                        "parameter_invalid_string",
                        "recurring[usage_type]",
                        format!("Invalid usage_type: {o}"),
                    ))
                }
            };
            Some(Recurring {
                interval,
                interval_count: count,
                meter: Null,
                trial_period_days: None,
                usage_type,
            })
        }
    };
    let tiers_mode = match opt_str(p, "tiers_mode")? {
        None => None,
        Some("volume") => Some("volume"),
        Some("graduated") => Some("graduated"),
        Some(o) => {
            return Err(ApiError::invalid(
                "parameter_invalid_string",
                "tiers_mode",
                format!("Invalid tiers_mode: {o}"),
            ))
        }
    };
    let tiers = match p.get("tiers") {
        None => None,
        Some(t) => {
            let mut out = vec![];
            for (n, tier) in t.as_list().into_iter().enumerate() {
                let up_to = match tier.get("up_to").and_then(PVal::as_str) {
                    Some("inf") | None => None,
                    Some(v) => Some(v.parse::<i64>().map_err(|_| {
                        ApiError::invalid_integer(&format!("tiers[{n}][up_to]"), v)
                    })?),
                };
                let ua = tier
                    .get("unit_amount")
                    .map(|v| int_in(v, &format!("tiers[{n}][unit_amount]")))
                    .transpose()?
                    .unwrap_or(0);
                let fa = tier
                    .get("flat_amount")
                    .map(|v| int_in(v, &format!("tiers[{n}][flat_amount]")))
                    .transpose()?
                    .unwrap_or(0);
                out.push(Tier::new(up_to, ua, fa));
            }
            Some(out)
        }
    };
    let tiered = tiers.is_some() || opt_str(p, "billing_scheme")? == Some("tiered");
    if tiered && (tiers.is_none() || tiers_mode.is_none()) {
        return Err(ApiError::missing_param(if tiers.is_none() {
            "tiers"
        } else {
            "tiers_mode"
        }));
    }
    if !tiered && unit_amount.is_none() {
        return Err(ApiError::missing_param("unit_amount"));
    }
    let id = ctx.ids.next("price");
    let price = Price {
        id: id.clone(),
        object: Lit("price"),
        active: p.bool("active")?.unwrap_or(true),
        billing_scheme: if tiered { "tiered" } else { "per_unit" },
        created: ctx.now,
        currency,
        custom_unit_amount: Null,
        livemode: false,
        lookup_key: opt_str(p, "lookup_key")?.map(str::to_string),
        metadata: metadata(p, "metadata")?.unwrap_or_default(),
        nickname: opt_str(p, "nickname")?.map(str::to_string),
        product,
        kind: if recurring.is_some() {
            "recurring"
        } else {
            "one_time"
        },
        recurring,
        tax_behavior: "unspecified",
        tiers,
        tiers_mode,
        transform_quantity: Null,
        unit_amount: if tiered { None } else { unit_amount },
        unit_amount_decimal: if tiered {
            None
        } else {
            unit_amount.map(|a| a.to_string())
        },
    };
    ctx.emit("price.created", &price, None);
    book.prices.insert(price);
    let price = book
        .prices
        .get(&id)
        .ok_or_else(|| ApiError::missing("price", &id, "id"))?;
    expanded(app, book, price, p)
}

/// Parses a decimal percentage ("12.5") into hundredths of a percent.
fn parse_percent(s: &str) -> Option<i64> {
    let s = s.trim();
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 2 || whole.is_empty() && frac.is_empty() {
        return None;
    }
    let w: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let f: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<2}").parse().ok()?
    };
    let bp = w.checked_mul(100)?.checked_add(f)?;
    (bp > 0 && bp <= 10_000).then_some(bp)
}

fn create_coupon(app: &App, book: &mut Book, ctx: &mut Ctx, p: &Params) -> Reply {
    p.check_allowed(&[
        "id",
        "percent_off",
        "amount_off",
        "currency",
        "duration",
        "duration_in_months",
        "name",
        "metadata",
        "expand",
        "max_redemptions",
        "redeem_by",
        "applies_to",
        "currency_options",
    ])?;
    let percent = match opt_str(p, "percent_off")? {
        None => None,
        Some(s) => Some(parse_percent(s).ok_or_else(|| {
            ApiError::invalid(
                "parameter_invalid_decimal",
                "percent_off",
                "percent_off must be a number greater than 0 and at most 100.",
            )
        })?),
    };
    let amount = p.int("amount_off")?;
    let currency = opt_str(p, "currency")?.map(str::to_lowercase);
    match (percent, amount) {
        (None, None) => return Err(ApiError::missing_param("percent_off")),
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "parameters_exclusive",
                "amount_off",
                "You may only specify one of these parameters: amount_off, percent_off.",
            ))
        }
        (None, Some(a)) if a <= 0 => {
            return Err(ApiError::invalid(
                "parameter_invalid_integer",
                "amount_off",
                "This value must be greater than 0.",
            ))
        }
        (None, Some(_)) if currency.is_none() => return Err(ApiError::missing_param("currency")),
        _ => {}
    }
    let duration = match opt_str(p, "duration")?.unwrap_or("once") {
        "once" => "once",
        "repeating" => "repeating",
        "forever" => "forever",
        o => {
            return Err(ApiError::invalid(
                "parameter_invalid_string",
                "duration",
                format!("Invalid duration: {o}"),
            ))
        }
    };
    let months = p.int("duration_in_months")?;
    if duration == "repeating" && months.is_none_or(|m| m <= 0) {
        return Err(ApiError::missing_param("duration_in_months"));
    }
    let id = match opt_str(p, "id")? {
        Some(id) if book.coupons.contains(id) => {
            return Err(ApiError::invalid(
                "resource_already_exists",
                "id",
                format!("Coupon already exists: {id}"),
            ))
        }
        Some(id) => id.to_string(),
        None => ctx.ids.token("", 8),
    };
    let coupon = Coupon {
        id: id.clone(),
        object: Lit("coupon"),
        amount_off: amount,
        created: ctx.now,
        currency: if amount.is_some() { currency } else { None },
        duration,
        duration_in_months: if duration == "repeating" {
            months
        } else {
            None
        },
        livemode: false,
        max_redemptions: Null,
        metadata: metadata(p, "metadata")?.unwrap_or_default(),
        name: opt_str(p, "name")?.map(str::to_string),
        percent_off: percent,
        redeem_by: Null,
        times_redeemed: 0,
        valid: true,
    };
    ctx.emit("coupon.created", &coupon, None);
    book.coupons.insert(coupon);
    let c = book
        .coupons
        .get(&id)
        .ok_or_else(|| ApiError::missing("coupon", &id, "id"))?;
    expanded(app, book, c, p)
}

/// Attaches a payment method (or a `pm_card_*` test id, which mints a new one).
fn attach(book: &mut Book, ctx: &mut Ctx, pm_id: &str, customer: &str) -> Result<String, ApiError> {
    let id = if book.payment_methods.contains(pm_id) {
        pm_id.to_string()
    } else if let Some((card, decline)) =
        engine::test_card(pm_id).filter(|_| pm_id.starts_with("pm_card_"))
    {
        let pm = new_pm(ctx, card, decline, None);
        let id = pm.id.clone();
        book.payment_methods.insert(pm);
        id
    } else {
        return Err(ApiError::missing("payment_method", pm_id, "payment_method"));
    };
    let mut pm = book
        .payment_methods
        .get(&id)
        .cloned()
        .ok_or_else(|| ApiError::missing("payment_method", &id, "payment_method"))?;
    if pm.customer.as_deref().is_some_and(|c| c != customer) {
        return Err(ApiError::invalid(
            "payment_method_unexpected_state",
            "payment_method",
            "The payment method you provided has already been attached to a customer.",
        ));
    }
    if pm.customer.is_none() {
        pm.customer = Some(customer.to_string());
        ctx.emit("payment_method.attached", &pm, None);
        book.payment_methods.insert(pm);
    }
    Ok(id)
}

fn new_pm(
    ctx: &mut Ctx,
    card: Card,
    decline: Option<String>,
    customer: Option<String>,
) -> PaymentMethod {
    PaymentMethod {
        id: ctx.ids.next("pm"),
        object: Lit("payment_method"),
        allow_redisplay: "unspecified",
        billing_details: BillingDetails {
            address: Null,
            email: None,
            name: None,
            phone: Null,
        },
        card,
        created: ctx.now,
        customer,
        livemode: false,
        metadata: Metadata::new(),
        kind: Lit("card"),
        decline,
    }
}

fn create_payment_method(app: &App, book: &mut Book, ctx: &mut Ctx, p: &Params) -> Reply {
    p.check_allowed(&[
        "type",
        "card",
        "billing_details",
        "metadata",
        "expand",
        "customer",
        "payment_method",
        "allow_redisplay",
    ])?;
    let kind = p.required("type")?;
    if kind != "card" {
        return Err(ApiError::invalid(
            "parameter_invalid_string",
            "type",
            format!("The fake only supports type=card, not {kind}."),
        ));
    }
    let card = p
        .get("card")
        .ok_or_else(|| ApiError::missing_param("card"))?;
    let (mut c, decline) = if let Some(tok) = card.get("token").and_then(PVal::as_str) {
        engine::test_card(tok).ok_or_else(|| ApiError::missing("token", tok, "card[token]"))?
    } else {
        let number = card
            .get("number")
            .and_then(PVal::as_str)
            .ok_or_else(|| ApiError::missing_param("card[number]"))?;
        let (mut c, d) = engine::test_card(number).ok_or_else(|| {
            let mut e = ApiError::new(
                402,
                "card_error",
                Some("incorrect_number"),
                "Your card number is incorrect.",
            );
            e.param = Some("card[number]".into());
            e
        })?;
        if let Some(m) = card.get("exp_month") {
            c.exp_month = int_in(m, "card[exp_month]")?;
        }
        if let Some(y) = card.get("exp_year") {
            let y = int_in(y, "card[exp_year]")?;
            c.exp_year = if y < 100 { 2000 + y } else { y };
        }
        if !(1..=12).contains(&c.exp_month) {
            return Err(ApiError::new(
                402,
                "card_error",
                Some("invalid_expiry_month"),
                "Your card's expiration month is invalid.",
            )
            .with_param("card[exp_month]"));
        }
        (c, d)
    };
    c.exp_month = c.exp_month.clamp(1, 12);
    let mut pm = new_pm(ctx, c, decline, None);
    if let Some(bd) = p.get("billing_details") {
        pm.billing_details.email = bd.get("email").and_then(PVal::as_str).map(str::to_string);
        pm.billing_details.name = bd.get("name").and_then(PVal::as_str).map(str::to_string);
    }
    if let Some(m) = metadata(p, "metadata")? {
        pm.metadata = m;
    }
    let id = pm.id.clone();
    book.payment_methods.insert(pm);
    let pm = book
        .payment_methods
        .get(&id)
        .ok_or_else(|| ApiError::missing("payment_method", &id, "id"))?;
    expanded(app, book, pm, p)
}

fn attach_payment_method(app: &App, book: &mut Book, ctx: &mut Ctx, id: &str, p: &Params) -> Reply {
    p.check_allowed(&["customer", "expand"])?;
    let customer = p.required("customer")?;
    if !book.customers.contains(customer) {
        return Err(ApiError::missing("customer", customer, "customer"));
    }
    let pm_id = attach(book, ctx, id, customer)?;
    let pm = book
        .payment_methods
        .get(&pm_id)
        .ok_or_else(|| ApiError::missing("payment_method", &pm_id, "id"))?;
    expanded(app, book, pm, p)
}

fn parse_items(p: &Params) -> Result<Vec<ItemChange>, ApiError> {
    let mut out = vec![];
    if let Some(items) = p.get("items") {
        for (n, it) in items.as_list().into_iter().enumerate() {
            if !matches!(it, PVal::Map(_)) {
                return Err(ApiError::invalid(
                    "parameter_invalid_hash",
                    &format!("items[{n}]"),
                    "Invalid hash",
                ));
            }
            if let PVal::Map(m) = it {
                for k in m.keys() {
                    if ![
                        "id",
                        "price",
                        "quantity",
                        "deleted",
                        "metadata",
                        "discounts",
                        "tax_rates",
                        "clear_usage",
                        "price_data",
                    ]
                    .contains(&k.as_str())
                    {
                        return Err(ApiError::unknown_param(&format!("items[{n}][{k}]")));
                    }
                }
            }
            out.push(ItemChange {
                id: it.get("id").and_then(PVal::as_str).map(str::to_string),
                price: it.get("price").and_then(PVal::as_str).map(str::to_string),
                quantity: it
                    .get("quantity")
                    .map(|v| int_in(v, &format!("items[{n}][quantity]")))
                    .transpose()?,
                deleted: it.get("deleted").and_then(PVal::as_str) == Some("true"),
            });
        }
    }
    Ok(out)
}

fn coupon_param(p: &Params) -> Result<Option<String>, ApiError> {
    if let Some(c) = opt_str(p, "coupon")? {
        return Ok(Some(c.to_string()));
    }
    if let Some(d) = p.get("discounts") {
        for item in d.as_list() {
            if let Some(c) = item.get("coupon").and_then(PVal::as_str) {
                return Ok(Some(c.to_string()));
            }
        }
    }
    Ok(None)
}

fn create_subscription(app: &App, book: &mut Book, ctx: &mut Ctx, p: &Params) -> Reply {
    p.check_allowed(&[
        "customer",
        "items",
        "coupon",
        "discounts",
        "trial_end",
        "trial_period_days",
        "default_payment_method",
        "metadata",
        "cancel_at_period_end",
        "cancel_at",
        "payment_behavior",
        "collection_method",
        "expand",
        "description",
        "off_session",
        "proration_behavior",
        "currency",
        "payment_settings",
        "trial_from_plan",
        "billing_cycle_anchor",
        "automatic_tax",
    ])?;
    let customer = p.required("customer")?.to_string();
    if !book.customers.contains(&customer) {
        return Err(ApiError::missing("customer", &customer, "customer"));
    }
    let items = parse_items(p)?;
    if items.is_empty() {
        return Err(ApiError::missing_param("items"));
    }
    let mut prices = vec![];
    for (n, it) in items.iter().enumerate() {
        let pid = it
            .price
            .as_deref()
            .ok_or_else(|| ApiError::missing_param(&format!("items[{n}][price]")))?;
        let price = book
            .prices
            .get(pid)
            .ok_or_else(|| ApiError::missing("price", pid, &format!("items[{n}][price]")))?
            .clone();
        if price.recurring.is_none() {
            return Err(ApiError::invalid("parameter_invalid", &format!("items[{n}][price]"), "The price specified is set to `type=one_time` but this field only accepts prices with `type=recurring`."));
        }
        if let Some(q) = it.quantity {
            if q < 0 {
                return Err(ApiError::invalid(
                    "parameter_invalid_integer",
                    &format!("items[{n}][quantity]"),
                    "This value must be greater than or equal to 0.",
                ));
            }
        }
        prices.push((price, it.quantity));
    }
    let currency = prices[0].0.currency.clone();
    let interval = prices[0]
        .0
        .recurring
        .as_ref()
        .map(|r| (r.interval, r.interval_count));
    for (n, (pr, _)) in prices.iter().enumerate() {
        if pr.currency != currency {
            return Err(ApiError::invalid(
                "parameter_invalid",
                &format!("items[{n}][price]"),
                "All prices on a subscription must have the same currency.",
            ));
        }
        if pr
            .recurring
            .as_ref()
            .map(|r| (r.interval, r.interval_count))
            != interval
        {
            return Err(ApiError::invalid("parameter_invalid", &format!("items[{n}][price]"), "All prices on a subscription must have the same recurring interval and interval_count."));
        }
    }
    let trial_end = match p.get("trial_end") {
        None => None,
        Some(PVal::Str(s)) if s == "now" => None,
        Some(v) => {
            let t = int_in(v, "trial_end")?;
            if t <= ctx.now {
                return Err(ApiError::invalid(
                    "parameter_invalid_integer",
                    "trial_end",
                    "Invalid timestamp: must be an integer Unix timestamp in the future.",
                ));
            }
            Some(t)
        }
    };
    let trial_end = match (trial_end, p.int("trial_period_days")?) {
        (Some(t), _) => Some(t),
        (None, Some(d)) if d > 0 => Some(ctx.now + d * engine::DAY),
        _ => None,
    };
    let dpm = opt_str(p, "default_payment_method")?.map(str::to_string);
    if let Some(pm) = &dpm {
        if !book.payment_methods.contains(pm) {
            return Err(ApiError::missing(
                "payment_method",
                pm,
                "default_payment_method",
            ));
        }
    }
    let coupon = match coupon_param(p)? {
        Some(c) => Some(
            book.coupons
                .get(&c)
                .ok_or_else(|| ApiError::missing("coupon", &c, "discounts[0][coupon]"))?
                .clone(),
        ),
        None => None,
    };
    let (iv, ic) = interval.unwrap_or((Interval::Month, 1));
    let start = ctx.now;
    let period_end = trial_end.unwrap_or_else(|| engine::add_interval(start, iv, ic));
    let sub_id = ctx.ids.next("sub");
    let data: Vec<SubscriptionItem> = prices
        .into_iter()
        .map(|(price, q)| SubscriptionItem {
            id: ctx.ids.next("si"),
            object: Lit("subscription_item"),
            billing_thresholds: Null,
            created: start,
            current_period_end: period_end,
            current_period_start: start,
            discounts: vec![],
            metadata: Metadata::new(),
            plan: Plan::from_price(&price),
            quantity: if price.is_metered() {
                None
            } else {
                Some(q.unwrap_or(1))
            },
            price,
            subscription: sub_id.clone(),
            tax_rates: EmptyList,
        })
        .collect();
    let discount = coupon.map(|c| {
        let end = match (c.duration, c.duration_in_months) {
            ("repeating", Some(m)) => Some(engine::add_interval(start, Interval::Month, m)),
            _ => None,
        };
        Discount {
            id: ctx.ids.next("di"),
            object: Lit("discount"),
            checkout_session: Null,
            source: DiscountSource::coupon(&c.id),
            coupon: c,
            customer: customer.clone(),
            end,
            invoice: Null,
            invoice_item: Null,
            promotion_code: Null,
            start,
            subscription: Some(sub_id.clone()),
            subscription_item: Null,
        }
    });
    let mut sub = new_subscription(
        sub_id.clone(),
        customer.clone(),
        currency,
        start,
        data,
        discount,
    );
    sub.default_payment_method = dpm;
    sub.metadata = metadata(p, "metadata")?.unwrap_or_default();
    sub.description = opt_str(p, "description")?.map(str::to_string);
    if trial_end.is_some() {
        sub.status = "trialing";
        sub.trial_start = Some(start);
        sub.trial_end = trial_end;
    }
    if p.bool("cancel_at_period_end")? == Some(true) {
        sub.cancel_at_period_end = true;
        sub.cancel_at = Some(period_end);
        sub.canceled_at = Some(start);
    }
    ctx.emit("customer.subscription.created", &sub, None);
    book.subscriptions.insert(sub);
    let reason = "subscription_create";
    let inv = engine::create_invoice(book, ctx, &sub_id, start, period_end, reason)?;
    let is_trial = trial_end.is_some();
    if !is_trial {
        let payment = engine::attempt_payment(book, ctx, &inv, PayMode::Normal);
        if payment.is_ok() {
            if let Some(s) = book.subscriptions.get(&sub_id) {
                if s.status == "incomplete" {
                    // on_invoice_paid already moved it; nothing to do
                }
            }
        } else if p.string("payment_behavior")? == Some("error_if_incomplete") {
            return payment.map(|_| (200, vec![]));
        }
    }
    let sub = book
        .subscriptions
        .get(&sub_id)
        .ok_or_else(|| ApiError::missing("subscription", &sub_id, "id"))?;
    expanded(app, book, sub, p)
}

/// A subscription with Stripe's defaults; `status` starts `incomplete` until paid.
pub fn new_subscription(
    id: String,
    customer: String,
    currency: String,
    start: i64,
    items: Vec<SubscriptionItem>,
    discount: Option<Discount>,
) -> Subscription {
    let url = format!("/v1/subscription_items?subscription={id}");
    Subscription {
        object: Lit("subscription"),
        application: Null,
        application_fee_percent: Null,
        automatic_tax: AutomaticTax {
            disabled_reason: Null,
            enabled: false,
            liability: Null,
        },
        billing_cycle_anchor: start,
        billing_cycle_anchor_config: Null,
        billing_mode: BillingMode::classic(),
        billing_schedules: EmptyList,
        billing_thresholds: Null,
        cancel_at: None,
        cancel_at_period_end: false,
        canceled_at: None,
        cancellation_details: CancellationDetails {
            comment: None,
            feedback: None,
            reason: None,
        },
        collection_method: "charge_automatically",
        created: start,
        currency,
        customer,
        days_until_due: None,
        default_payment_method: None,
        default_source: Null,
        default_tax_rates: EmptyList,
        description: None,
        discounts: discount.iter().map(|d| d.id.clone()).collect(),
        discount,
        ended_at: None,
        invoice_settings: SubInvoiceSettings {
            account_tax_ids: Null,
            issuer: Issuer { kind: "self" },
        },
        items: ListOf::new(items, url),
        latest_invoice: None,
        livemode: false,
        metadata: Metadata::new(),
        next_pending_invoice_item_invoice: Null,
        on_behalf_of: Null,
        pause_collection: None,
        payment_settings: PaymentSettings {
            payment_method_options: Null,
            payment_method_types: Null,
            save_default_payment_method: "off",
        },
        pending_invoice_item_interval: Null,
        pending_setup_intent: Null,
        pending_update: Null,
        schedule: Null,
        start_date: start,
        status: "incomplete",
        test_clock: Null,
        transfer_data: Null,
        trial_end: None,
        trial_settings: TrialSettings {
            end_behavior: TrialEndBehavior {
                missing_payment_method: "create_invoice",
            },
        },
        trial_start: None,
        trial_will_end_sent: false,
        id,
    }
}

fn update_subscription(app: &App, book: &mut Book, ctx: &mut Ctx, id: &str, p: &Params) -> Reply {
    p.check_allowed(&[
        "items",
        "cancel_at_period_end",
        "cancel_at",
        "metadata",
        "default_payment_method",
        "pause_collection",
        "proration_behavior",
        "description",
        "expand",
        "payment_behavior",
        "trial_end",
        "off_session",
        "discounts",
        "cancellation_details",
        "billing_cycle_anchor",
        "proration_date",
    ])?;
    if !book.subscriptions.contains(id) {
        return Err(ApiError::missing("subscription", id, "id"));
    }
    let mut up = SubUpdate {
        items: parse_items(p)?,
        cancel_at_period_end: p.bool("cancel_at_period_end")?,
        metadata: metadata(p, "metadata")?,
        ..Default::default()
    };
    if let Some(v) = p.get("cancel_at") {
        up.cancel_at = Some(match v.as_str() {
            Some("") => None,
            _ => Some(int_in(v, "cancel_at")?),
        });
    }
    if let Some(v) = p.string("default_payment_method")? {
        up.default_payment_method = Some((!v.is_empty()).then(|| v.to_string()));
    }
    if let Some(v) = p.string("description")? {
        up.description = Some((!v.is_empty()).then(|| v.to_string()));
    }
    match p.get("pause_collection") {
        None => {}
        Some(PVal::Str(s)) if s.is_empty() => up.pause_collection = Some(None),
        Some(v) => {
            let behavior = v
                .get("behavior")
                .and_then(PVal::as_str)
                .ok_or_else(|| ApiError::missing_param("pause_collection[behavior]"))?;
            if !["keep_as_draft", "mark_uncollectible", "void"].contains(&behavior) {
                return Err(ApiError::invalid(
                    "parameter_invalid_string",
                    "pause_collection[behavior]",
                    format!("Invalid behavior: {behavior}"),
                ));
            }
            let resumes_at = v
                .get("resumes_at")
                .map(|r| int_in(r, "pause_collection[resumes_at]"))
                .transpose()?;
            up.pause_collection = Some(Some(PauseCollection {
                behavior: behavior.to_string(),
                resumes_at,
            }));
        }
    }
    if book
        .subscriptions
        .get(id)
        .is_some_and(|s| s.status == "canceled")
    {
        return Err(ApiError::new(
            400,
            "invalid_request_error",
            None,
            "A canceled subscription can only update its cancellation_details and metadata.",
        ));
    }
    engine::update_subscription(book, ctx, id, up)?;
    let sub = book
        .subscriptions
        .get(id)
        .ok_or_else(|| ApiError::missing("subscription", id, "id"))?;
    expanded(app, book, sub, p)
}

/// Ensures a grant, code or key is not reused across accounts (helper for OAuth).
pub fn new_grant(account: &str, scope: &str) -> Grant {
    Grant {
        account: account.to_string(),
        read_only: scope != "read_write",
        scope: scope.to_string(),
    }
}
