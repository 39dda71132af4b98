//! Connect OAuth: `/oauth/authorize`, `/oauth/token`, `/oauth/deauthorize`. Errors use
//! the OAuth shape `{"error": "...", "error_description": "..."}` like Stripe's.

use crate::api::{api_key, new_grant};
use crate::engine::Ctx;
use crate::model::API_VERSION;
use crate::query::Params;
use crate::server::App;
use actix_web::{HttpRequest, HttpResponse};

fn oauth_error(status: u16, error: &str, description: &str) -> HttpResponse {
    HttpResponse::build(
        actix_web::http::StatusCode::from_u16(status)
            .unwrap_or(actix_web::http::StatusCode::BAD_REQUEST),
    )
    .insert_header(("Content-Type", "application/json"))
    .body(serde_json::json!({"error": error, "error_description": description}).to_string())
}

fn ok_json(v: serde_json::Value, request_id: &str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Content-Type", "application/json"))
        .insert_header(("Stripe-Version", API_VERSION))
        .insert_header(("Request-Id", request_id.to_string()))
        .body(v.to_string())
}

pub fn handle(app: &App, req: &HttpRequest, body: &[u8], request_id: &str) -> HttpResponse {
    let mut p = Params::parse(req.query_string());
    if req.method() != actix_web::http::Method::GET {
        p.merge(&String::from_utf8_lossy(body));
    }
    match (req.method().as_str(), req.path()) {
        ("GET", "/oauth/authorize") => authorize(app, &p),
        ("POST", "/oauth/token") => token(app, req, &p, request_id),
        ("POST", "/oauth/deauthorize") => deauthorize(app, req, &p, request_id),
        _ => oauth_error(404, "invalid_request", "Unrecognized OAuth endpoint."),
    }
}

fn platform_secret(app: &App, req: &HttpRequest, p: &Params) -> Option<String> {
    let key = p
        .str("client_secret")
        .map(str::to_string)
        .or_else(|| api_key(req))?;
    (key.starts_with("sk_") && app.config.api_keys.contains(&key)).then_some(key)
}

/// Simulates the user approving the connection at once and redirects back with a code.
/// Extension: `stripe_user_id=acct_…` picks a pre-created connected account; otherwise
/// the next unclaimed pre-created account is used, or a new empty one is made.
fn authorize(app: &App, p: &Params) -> HttpResponse {
    if p.str("response_type") != Some("code") {
        return oauth_error(400, "invalid_request", "response_type must be 'code'.");
    }
    match p.str("client_id") {
        Some(c) if c == app.config.connect_client_id => {}
        Some(c) => {
            return oauth_error(
                400,
                "invalid_client",
                &format!("No such application: '{c}'"),
            )
        }
        None => return oauth_error(400, "invalid_request", "No client_id provided."),
    }
    let scope = p.str("scope").unwrap_or("read_only");
    if scope != "read_only" && scope != "read_write" {
        return oauth_error(400, "invalid_scope", &format!("Invalid scope: {scope}"));
    }
    let Some(redirect) = p.str("redirect_uri") else {
        return oauth_error(
            400,
            "invalid_redirect_uri",
            "No redirect_uri provided and none registered for the fake.",
        );
    };
    let Ok(mut url) = url::Url::parse(redirect) else {
        return oauth_error(400, "invalid_redirect_uri", "Invalid redirect_uri.");
    };
    let mut state = app.state.write();
    let wanted = p
        .str("stripe_user_id")
        .filter(|a| state.books.contains_key(*a) && **a != state.platform);
    let account = match wanted {
        Some(a) => {
            let a = a.to_string();
            state.unclaimed_accounts.retain(|x| x != &a);
            a
        }
        None if !state.unclaimed_accounts.is_empty() => state.unclaimed_accounts.remove(0),
        None => {
            let n = state.books.len();
            state.add_connected_account(&format!("Connected Business {n}"))
        }
    };
    state.revoked_accounts.remove(&account);
    let code = state.ids.token("ac_", 24);
    state
        .oauth_codes
        .insert(code.clone(), new_grant(&account, scope));
    drop(state);
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("code", &code);
        q.append_pair("scope", scope);
        if let Some(s) = p.str("state") {
            q.append_pair("state", s);
        }
    }
    HttpResponse::Found()
        .insert_header(("Location", url.to_string()))
        .finish()
}

fn token(app: &App, req: &HttpRequest, p: &Params, request_id: &str) -> HttpResponse {
    if platform_secret(app, req, p).is_none() {
        return oauth_error(
            401,
            "invalid_client",
            "Invalid client_secret: must be the platform's secret key.",
        );
    }
    let mut state = app.state.write();
    let grant = match p.str("grant_type") {
        Some("authorization_code") => {
            let Some(code) = p.str("code") else {
                return oauth_error(400, "invalid_request", "No code provided.");
            };
            match state.oauth_codes.remove(code) {
                Some(g) => g,
                None => {
                    return oauth_error(
                        400,
                        "invalid_grant",
                        &format!("Authorization code does not exist: {code}"),
                    )
                }
            }
        }
        Some("refresh_token") => {
            let Some(rt) = p.str("refresh_token") else {
                return oauth_error(400, "invalid_request", "No refresh_token provided.");
            };
            match state.refresh_tokens.get(rt) {
                Some(g) if !state.revoked_accounts.contains(&g.account) => g.clone(),
                _ => {
                    return oauth_error(
                        400,
                        "invalid_grant",
                        &format!("Refresh token does not exist: {rt}"),
                    )
                }
            }
        }
        _ => {
            return oauth_error(
                400,
                "unsupported_grant_type",
                "grant_type must be authorization_code or refresh_token.",
            )
        }
    };
    let access = state.ids.token("sk_test_oauth_", 32);
    let refresh = state.ids.token("rt_", 32);
    let publishable = state.ids.token("pk_test_", 32);
    state.grants.insert(access.clone(), grant.clone());
    state.refresh_tokens.insert(refresh.clone(), grant.clone());
    ok_json(
        serde_json::json!({
            "access_token": access,
            "livemode": false,
            "refresh_token": refresh,
            "scope": grant.scope,
            "stripe_publishable_key": publishable,
            "stripe_user_id": grant.account,
            "token_type": "bearer",
        }),
        request_id,
    )
}

fn deauthorize(app: &App, req: &HttpRequest, p: &Params, request_id: &str) -> HttpResponse {
    if platform_secret(app, req, p).is_none() {
        return oauth_error(
            401,
            "invalid_client",
            "Authenticate with the platform's secret key.",
        );
    }
    if p.str("client_id") != Some(app.config.connect_client_id.as_str()) {
        return oauth_error(
            400,
            "invalid_client",
            "client_id does not match the platform.",
        );
    }
    let Some(account) = p.str("stripe_user_id") else {
        return oauth_error(400, "invalid_request", "No stripe_user_id provided.");
    };
    let mut guard = app.state.write();
    let state = &mut *guard;
    if !state.books.contains_key(account)
        || account == state.platform
        || state.revoked_accounts.contains(account)
    {
        return oauth_error(
            400,
            "invalid_client",
            &format!("No such account or not connected: {account}"),
        );
    }
    state.revoked_accounts.insert(account.to_string());
    state.grants.retain(|_, g| g.account != account);
    state.refresh_tokens.retain(|_, g| g.account != account);
    let now = state.now();
    let client_id = app.config.connect_client_id.clone();
    let mut ctx = Ctx::new(now, &mut state.ids, Some(account.to_string()));
    ctx.emit_value(
        "account.application.deauthorized",
        serde_json::json!({"id": client_id, "object": "application", "name": "Fake Platform"}),
        None,
    );
    let events = std::mem::take(&mut ctx.events);
    drop(ctx);
    app.commit(state, account, events);
    ok_json(serde_json::json!({ "stripe_user_id": account }), request_id)
}
