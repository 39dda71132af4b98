//! `/_admin/*`: state inspection, reseeding and triggers that mutate state the way
//! Stripe would and send the resulting events as signed webhooks. No Stripe auth:
//! served only when `admin_enabled` (the default; disable on shared hosts).
//!
//! Bodies are JSON. Every trigger accepts `"account": "acct_…"` (default: platform).

use crate::engine::{self, Ctx, ItemChange, PayMode, SubUpdate};
use crate::error::ApiError;
use crate::server::App;
use crate::store::{Book, State};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{json, Value};

fn reply(status: u16, v: Value) -> HttpResponse {
    HttpResponse::build(
        actix_web::http::StatusCode::from_u16(status).unwrap_or(actix_web::http::StatusCode::OK),
    )
    .insert_header(("Content-Type", "application/json"))
    .body(v.to_string())
}

fn err(e: ApiError) -> HttpResponse {
    reply(
        e.status,
        serde_json::from_str(&e.to_json()).unwrap_or(Value::Null),
    )
}

fn bad(msg: &str) -> ApiError {
    ApiError::new(400, "invalid_request_error", None, msg)
}

pub async fn handle(app: &App, req: &HttpRequest, body: &[u8]) -> HttpResponse {
    if !app.config.admin_enabled {
        return err(ApiError::unrecognized_url(
            req.method().as_str(),
            req.path(),
        ));
    }
    let args: Value = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(body) {
            Ok(v @ Value::Object(_)) => v,
            _ => return err(bad("admin bodies must be JSON objects")),
        }
    };
    let path = req.path().trim_end_matches('/');
    match (req.method().as_str(), path) {
        ("GET", "/_admin/summary") => reply(200, summary(app)),
        ("GET", "/_admin/truth") => match app.state.read().truth.clone() {
            Some(t) => reply(200, t),
            None => err(ApiError::new(
                404,
                "invalid_request_error",
                Some("resource_missing"),
                "The fake was not seeded.",
            )),
        },
        ("POST", "/_admin/reseed") => {
            let opts: crate::seed::SeedOptions = match serde_json::from_value(args) {
                Ok(o) => o,
                Err(e) => return err(bad(&format!("invalid seed options: {e}"))),
            };
            let (mut state, truth) = crate::seed::generate_with(&opts);
            state.truth = serde_json::to_value(&truth).ok();
            let total = truth.totals.clone();
            *app.state.write() = state;
            reply(
                200,
                json!({"ok": true, "customers": truth.customer_count, "totals": total}),
            )
        }
        ("GET", "/_admin/faults") => reply(200, faults(app)),
        ("POST", "/_admin/faults") => match set_faults(app, &args) {
            Ok(v) => reply(200, v),
            Err(e) => err(e),
        },
        ("POST", "/_admin/accounts") => {
            let name = args
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("Connected Business")
                .to_string();
            let mut s = app.state.write();
            let id = s.add_connected_account(&name);
            s.unclaimed_accounts.push(id.clone());
            reply(200, json!({"ok": true, "account": id}))
        }
        ("POST", p) if p.starts_with("/_admin/trigger/") => {
            let kind = &p["/_admin/trigger/".len()..];
            match trigger(app, kind, &args) {
                Ok(v) => reply(200, v),
                Err(e) => err(e),
            }
        }
        _ => err(ApiError::unrecognized_url(
            req.method().as_str(),
            req.path(),
        )),
    }
}

fn summary(app: &App) -> Value {
    let s = app.state.read();
    let mut books: Vec<Value> = s.books.values().map(Book::summary).collect();
    books.sort_by_key(|b| b["account"].as_str().unwrap_or("").to_string());
    json!({
        "api_version": crate::model::API_VERSION,
        "platform_account": s.platform,
        "clock": s.clock,
        "accounts": books,
        "unclaimed_accounts": s.unclaimed_accounts,
        "revoked_accounts": s.revoked_accounts,
        "webhooks": app.webhooks.stats.snapshot(),
        "seeded": s.truth.is_some(),
    })
}

/// The faults in force: API errors and rate limit, and what happens to webhooks.
fn faults(app: &App) -> Value {
    let delivery = app.webhooks.faults();
    json!({
        "error_rate": app.faults.rate(),
        "rate_limit": app.limiter.rate(),
        "latency_ms": app.latency_ms.load(std::sync::atomic::Ordering::Relaxed),
        "webhook_drop_rate": delivery.drop_rate,
        "webhook_duplicate_rate": delivery.duplicate_rate,
        "webhook_duplicate_copies": delivery.duplicate_copies,
        "webhook_shuffle": delivery.shuffle,
    })
}

/// Changes the faults while serving; fields left out keep their value. Answers the
/// faults now in force. Checked before anything changes: a bad field changes nothing.
fn set_faults(app: &App, args: &Value) -> Result<Value, ApiError> {
    const KNOWN: [&str; 7] = [
        "error_rate",
        "rate_limit",
        "latency_ms",
        "webhook_drop_rate",
        "webhook_duplicate_rate",
        "webhook_duplicate_copies",
        "webhook_shuffle",
    ];
    let fields = args.as_object().map(|o| o.keys()).into_iter().flatten();
    if let Some(unknown) = fields.into_iter().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(bad(&format!(
            "unknown fault '{unknown}'; known: {}",
            KNOWN.join(", ")
        )));
    }
    let fraction = |k: &str| -> Result<Option<f64>, ApiError> {
        match args.get(k) {
            None => Ok(None),
            Some(v) => match v.as_f64() {
                Some(f) if (0.0..=1.0).contains(&f) => Ok(Some(f)),
                _ => Err(bad(&format!("{k} must be a number from 0 to 1"))),
            },
        }
    };
    let count = |k: &str, min: u64| -> Result<Option<u64>, ApiError> {
        match args.get(k) {
            None => Ok(None),
            Some(v) => match v.as_u64() {
                Some(n) if n >= min && n <= u64::from(u32::MAX) => Ok(Some(n)),
                _ => Err(bad(&format!("{k} must be a whole number ≥ {min}"))),
            },
        }
    };
    let error_rate = fraction("error_rate")?;
    let rate_limit = count("rate_limit", 0)?;
    let latency_ms = count("latency_ms", 0)?;
    let drop_rate = fraction("webhook_drop_rate")?;
    let duplicate_rate = fraction("webhook_duplicate_rate")?;
    let copies = count("webhook_duplicate_copies", 2)?;
    let shuffle = match args.get("webhook_shuffle") {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err(bad("webhook_shuffle must be true or false")),
    };
    if let Some(r) = error_rate {
        app.faults.set_rate(r);
    }
    if let Some(r) = rate_limit {
        app.limiter.set_rate(r as u32);
    }
    if let Some(ms) = latency_ms {
        app.latency_ms
            .store(ms, std::sync::atomic::Ordering::Relaxed);
    }
    let mut delivery = app.webhooks.faults();
    delivery.drop_rate = drop_rate.unwrap_or(delivery.drop_rate);
    delivery.duplicate_rate = duplicate_rate.unwrap_or(delivery.duplicate_rate);
    delivery.duplicate_copies = copies.map_or(delivery.duplicate_copies, |n| n as u32);
    delivery.shuffle = shuffle.unwrap_or(delivery.shuffle);
    app.webhooks.set_faults(delivery);
    Ok(faults(app))
}

fn s<'a>(args: &'a Value, k: &str) -> Option<&'a str> {
    args.get(k)
        .and_then(Value::as_str)
        .filter(|x| !x.is_empty())
}

fn i(args: &Value, k: &str) -> Option<i64> {
    args.get(k).and_then(|v| {
        v.as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    })
}

/// The subscription a trigger targets: `subscription`, or the customer's newest
/// subscription that has not ended.
fn target_sub(book: &Book, args: &Value) -> Result<String, ApiError> {
    if let Some(id) = s(args, "subscription") {
        return book
            .subscriptions
            .get(id)
            .map(|s| s.id.clone())
            .ok_or_else(|| ApiError::missing("subscription", id, "subscription"));
    }
    let cus = s(args, "customer").ok_or_else(|| bad("pass \"subscription\" or \"customer\""))?;
    if !book.customers.contains(cus) {
        return Err(ApiError::missing("customer", cus, "customer"));
    }
    book.subscriptions
        .ids_for_customer(cus)
        .into_iter()
        .rev()
        .find(|id| {
            book.subscriptions
                .get(id)
                .is_some_and(|s| !matches!(s.status, "canceled" | "incomplete_expired"))
        })
        .ok_or_else(|| bad(&format!("customer {cus} has no live subscription")))
}

/// The dispute a trigger targets: `dispute`, or the customer's newest open dispute.
fn target_dispute(book: &Book, args: &Value) -> Result<String, ApiError> {
    if let Some(id) = s(args, "dispute") {
        return book
            .disputes
            .get(id)
            .map(|d| d.id.clone())
            .ok_or_else(|| ApiError::missing("dispute", id, "dispute"));
    }
    let cus = s(args, "customer").ok_or_else(|| bad("pass \"dispute\" or \"customer\""))?;
    book.disputes
        .ids_for_customer(cus)
        .into_iter()
        .rev()
        .find(|id| {
            book.disputes.get(id).is_some_and(|d| {
                !matches!(
                    d.status,
                    "won" | "lost" | "warning_closed" | "prevented" | "charge_refunded"
                )
            })
        })
        .ok_or_else(|| bad(&format!("customer {cus} has no open dispute")))
}

/// Runs a trigger, commits its events (stored and delivered) and reports them.
pub fn trigger(app: &App, kind: &str, args: &Value) -> Result<Value, ApiError> {
    let mut guard = app.state.write();
    let state: &mut State = &mut guard;
    let account = s(args, "account")
        .map(str::to_string)
        .unwrap_or_else(|| state.platform.clone());
    if !state.books.contains_key(&account) {
        return Err(ApiError::missing("account", &account, "account"));
    }
    let tag = (account != state.platform).then(|| account.clone());
    let now = state.now();
    if kind == "advance_time" {
        let to = match (i(args, "to"), i(args, "seconds"), i(args, "days")) {
            (Some(t), _, _) => t,
            (None, Some(sec), _) => now + sec,
            (None, None, Some(d)) => now + d * engine::DAY,
            _ => return Err(bad("pass \"to\", \"seconds\" or \"days\"")),
        };
        if to < state.clock {
            return Err(bad("time only moves forward"));
        }
        let from = state.clock;
        let mut all = vec![];
        let accounts: Vec<String> = state.books.keys().cloned().collect();
        for acct in accounts {
            let tag = (acct != state.platform).then(|| acct.clone());
            let State { books, ids, .. } = &mut *state;
            let Some(book) = books.get_mut(&acct) else {
                continue;
            };
            let mut ctx = Ctx::new(from, ids, tag);
            engine::advance(book, &mut ctx, to);
            let mut events = std::mem::take(&mut ctx.events);
            drop(ctx);
            events.sort_by_key(|e| e.created);
            all.extend(events.iter().map(|e| e.id.clone()));
            app.commit(state, &acct, events);
        }
        state.clock = to;
        if state.realtime.is_some() {
            // Real time keeps flowing from the new position.
            state.realtime = Some((to, std::time::Instant::now()));
        }
        return Ok(json!({"ok": true, "clock": to, "events": all}));
    }
    let State { books, ids, .. } = &mut *state;
    let book = books
        .get_mut(&account)
        .ok_or_else(|| ApiError::missing("account", &account, "account"))?;
    let mut ctx = Ctx::new(now, ids, tag);
    let result: Result<Value, ApiError> = (|| {
        match kind {
        "fail_payment" => {
            let sub = target_sub(book, args)?;
            let decline = s(args, "decline_code").unwrap_or("insufficient_funds");
            let sticky = args.get("sticky").and_then(Value::as_bool).unwrap_or(false);
            let inv = engine::fail_next_payment(book, &mut ctx, &sub, decline, sticky)?;
            Ok(json!({"subscription": sub, "invoice": inv}))
        }
        "pay_invoice" => {
            let inv = match s(args, "invoice") {
                Some(i) => i.to_string(),
                None => {
                    let sub = target_sub(book, args)?;
                    book.invoices
                        .values()
                        .filter(|i| i.subscription.as_deref() == Some(sub.as_str()) && i.status == "open")
                        .max_by_key(|i| (i.created, i.id.clone()))
                        .map(|i| i.id.clone())
                        .ok_or_else(|| bad("no open invoice to pay"))?
                }
            };
            engine::attempt_payment(book, &mut ctx, &inv, PayMode::Succeed)?;
            Ok(json!({"invoice": inv}))
        }
        "update_subscription" => {
            let sub = target_sub(book, args)?;
            let change = ItemChange {
                id: s(args, "item").map(str::to_string),
                price: s(args, "price").map(str::to_string),
                quantity: i(args, "quantity"),
                deleted: false,
            };
            if change.price.is_none() && change.quantity.is_none() {
                return Err(bad("pass \"price\" and/or \"quantity\""));
            }
            let items_len = book.subscriptions.get(&sub).map(|s| s.items.data.len()).unwrap_or(0);
            let change = if change.id.is_none() && items_len > 1 {
                ItemChange {
                    id: book.subscriptions.get(&sub).and_then(|s| s.items.data.first()).map(|i| i.id.clone()),
                    ..change
                }
            } else {
                change
            };
            engine::update_subscription(book, &mut ctx, &sub, SubUpdate { items: vec![change], ..Default::default() })?;
            Ok(json!({"subscription": sub}))
        }
        "request_cancel" => {
            let sub = target_sub(book, args)?;
            let undo = args.get("undo").and_then(Value::as_bool).unwrap_or(false);
            engine::update_subscription(
                book,
                &mut ctx,
                &sub,
                SubUpdate {
                    cancel_at_period_end: Some(!undo),
                    ..Default::default()
                },
            )?;
            Ok(json!({"subscription": sub}))
        }
        "cancel" => {
            let sub = target_sub(book, args)?;
            engine::cancel_subscription(book, &mut ctx, &sub, s(args, "reason").unwrap_or("cancellation_requested"))?;
            Ok(json!({"subscription": sub}))
        }
        "expire_card" => {
            let pm = match s(args, "payment_method") {
                Some(p) => p.to_string(),
                None => {
                    let cus = s(args, "customer").ok_or_else(|| bad("pass \"payment_method\" or \"customer\""))?;
                    let c = book.customers.get(cus).ok_or_else(|| ApiError::missing("customer", cus, "customer"))?;
                    c.invoice_settings
                        .default_payment_method
                        .clone()
                        .or_else(|| book.payment_methods.ids_for_customer(cus).last().cloned())
                        .ok_or_else(|| bad("customer has no card"))?
                }
            };
            // Default: expired at the end of last month.
            let (y, m) = {
                use chrono::Datelike;
                let d = chrono::DateTime::from_timestamp(ctx.now, 0).unwrap_or_default();
                if d.month() == 1 {
                    (d.year() as i64 - 1, 12)
                } else {
                    (d.year() as i64, d.month() as i64 - 1)
                }
            };
            engine::set_card_expiry(book, &mut ctx, &pm, i(args, "exp_month").unwrap_or(m), i(args, "exp_year").unwrap_or(y))?;
            Ok(json!({"payment_method": pm}))
        }
        "dispute" => {
            let charge = match s(args, "charge") {
                Some(c) => c.to_string(),
                None => {
                    let cus = s(args, "customer").ok_or_else(|| bad("pass \"charge\" or \"customer\""))?;
                    book.charges
                        .ids_for_customer(cus)
                        .into_iter()
                        .rev()
                        .find(|c| book.charges.get(c).is_some_and(|c| c.status == "succeeded" && !c.disputed))
                        .ok_or_else(|| bad("customer has no undisputed successful charge"))?
                }
            };
            let inquiry = args.get("inquiry").and_then(Value::as_bool).unwrap_or(false);
            let dp = engine::open_dispute(book, &mut ctx, &charge, s(args, "reason").unwrap_or("fraudulent"), inquiry)?;
            Ok(json!({"dispute": dp, "charge": charge}))
        }
        "submit_dispute_evidence" => {
            let dp = target_dispute(book, args)?;
            engine::submit_dispute_evidence(book, &mut ctx, &dp, s(args, "text"))?;
            Ok(json!({"dispute": dp, "status": book.disputes.get(&dp).map(|d| d.status)}))
        }
        "close_dispute" => {
            let dp = target_dispute(book, args)?;
            let outcome = s(args, "outcome").ok_or_else(|| bad("pass \"outcome\": \"won\", \"lost\" or (an inquiry) \"warning_closed\""))?;
            let status = engine::close_dispute(book, &mut ctx, &dp, outcome)?;
            Ok(json!({"dispute": dp, "status": status}))
        }
        other => Err(ApiError::new(
            404,
            "invalid_request_error",
            Some("resource_missing"),
            format!("Unknown trigger '{other}'. Known: fail_payment, pay_invoice, update_subscription, request_cancel, cancel, expire_card, dispute, submit_dispute_evidence, close_dispute, advance_time."),
        )),
    }
    })();
    // A failed payment is still a result worth committing (its events happened).
    let events = std::mem::take(&mut ctx.events);
    drop(ctx);
    let ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
    let types: Vec<String> = events.iter().map(|e| e.kind.clone()).collect();
    let committed = !events.is_empty();
    app.commit(state, &account, events);
    match result {
        Ok(mut v) => {
            v["ok"] = json!(true);
            v["events"] = json!(ids);
            v["event_types"] = json!(types);
            Ok(v)
        }
        Err(e) if committed && e.status == 402 => Ok(
            json!({"ok": true, "declined": e.card.as_ref().map(|c| c.decline_code.clone()), "events": ids, "event_types": types}),
        ),
        Err(e) => Err(e),
    }
}
