//! In-process HTTP tests: the real server on 127.0.0.1:0, called with reqwest.

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use parking_lot::Mutex;
use proptest::prelude::*;
use reqwest::StatusCode;
use serde_json::Value;
use std::sync::Arc;
use stripe_fake::{FakeConfig, FakeServer, SeedOptions, WebhookConfig};

const SK: &str = "sk_test_fake";
const RK: &str = "rk_test_fake";

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn seeded(customers: usize) -> FakeConfig {
    FakeConfig {
        rate_limit: 0,
        seed: Some(SeedOptions {
            customers,
            seed: 11,
            now: Some(stripe_fake::seed::DEFAULT_NOW),
            connected_accounts: 1,
            connected_customers: 6,
        }),
        ..Default::default()
    }
}

fn enc(form: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in form {
        s.append_pair(k, v);
    }
    s.finish()
}

trait FormExt {
    fn form_body(self, form: &[(&str, &str)]) -> Self;
}

impl FormExt for reqwest::RequestBuilder {
    fn form_body(self, form: &[(&str, &str)]) -> Self {
        self.header("Content-Type", "application/x-www-form-urlencoded")
            .body(enc(form))
    }
}

async fn get(
    c: &reqwest::Client,
    base: &str,
    path: &str,
    key: Option<&str>,
) -> (StatusCode, Value) {
    let mut r = c.get(format!("{base}{path}"));
    if let Some(k) = key {
        r = r.bearer_auth(k);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn post(
    c: &reqwest::Client,
    base: &str,
    path: &str,
    key: &str,
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let resp = c
        .post(format!("{base}{path}"))
        .bearer_auth(key)
        .form_body(form)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn errors_auth_and_headers() {
    let fake = FakeServer::start(seeded(15)).await.unwrap();
    let base = format!("http://{}", fake.addr());
    let c = client();

    let resp = c
        .get(format!("{base}/v1/customers"))
        .bearer_auth(SK)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["stripe-version"], stripe_fake::API_VERSION);
    assert!(resp.headers()["request-id"]
        .to_str()
        .unwrap()
        .starts_with("req_"));

    let (s, v) = get(&c, &base, "/v1/customers", None).await;
    assert_eq!(s, 401);
    assert_eq!(v["error"]["type"], "invalid_request_error");
    let (s, _) = get(&c, &base, "/v1/customers", Some("sk_test_wrong")).await;
    assert_eq!(s, 401);

    for (q, code, param) in [
        ("limit=0", "parameter_invalid_integer", "limit"),
        ("limit=101", "parameter_invalid_integer", "limit"),
        ("limit=ten", "parameter_invalid_integer", "limit"),
        (
            "created[gte]=yesterday",
            "parameter_invalid_integer",
            "created[gte]",
        ),
        ("bogus=1", "parameter_unknown", "bogus"),
        (
            "starting_after=cus_a&ending_before=cus_b",
            "parameters_exclusive",
            "ending_before",
        ),
    ] {
        let (s, v) = get(&c, &base, &format!("/v1/customers?{q}"), Some(SK)).await;
        assert_eq!(s, 400, "{q}");
        assert_eq!(v["error"]["code"], code, "{q}");
        assert_eq!(v["error"]["param"], param, "{q}");
    }
    let (s, v) = get(&c, &base, "/v1/customers/cus_nope", Some(SK)).await;
    assert_eq!(s, 404);
    assert_eq!(v["error"]["code"], "resource_missing");
    assert_eq!(v["error"]["message"], "No such customer: 'cus_nope'");
    let (s, v) = get(&c, &base, "/v1/customers?starting_after=cus_nope", Some(SK)).await;
    assert_eq!(
        (s.as_u16(), v["error"]["param"].as_str()),
        (404, Some("starting_after"))
    );
    let (s, _) = get(&c, &base, "/v1/nothing_here", Some(SK)).await;
    assert_eq!(s, 404);

    // Restricted keys read but never write.
    let (s, _) = get(&c, &base, "/v1/subscriptions", Some(RK)).await;
    assert_eq!(s, 200);
    let (s, v) = post(&c, &base, "/v1/customers", RK, &[("email", "a@b.c")]).await;
    assert_eq!(s, 403);
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("rak_customer_write"));

    // Unknown connected account.
    let resp = c
        .get(format!("{base}/v1/customers"))
        .bearer_auth(SK)
        .header("Stripe-Account", "acct_nope")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    fake.stop().await;
}

#[tokio::test]
async fn pagination_filters_and_expand() {
    let fake = FakeServer::start(seeded(40)).await.unwrap();
    let base = format!("http://{}", fake.addr());
    let c = client();
    let truth = fake.truth().unwrap();

    // Walk customers forward.
    let mut ids = vec![];
    let mut after: Option<String> = None;
    loop {
        let q = match &after {
            Some(a) => format!("/v1/customers?limit=7&starting_after={a}"),
            None => "/v1/customers?limit=7".into(),
        };
        let (s, v) = get(&c, &base, &q, Some(SK)).await;
        assert_eq!(s, 200);
        assert_eq!(v["object"], "list");
        assert_eq!(v["url"], "/v1/customers");
        let data = v["data"].as_array().unwrap();
        assert!(data.len() <= 7);
        ids.extend(data.iter().map(|d| d["id"].as_str().unwrap().to_string()));
        if !v["has_more"].as_bool().unwrap() {
            break;
        }
        after = ids.last().cloned();
    }
    assert_eq!(ids.len(), 40);
    let mut dedup = ids.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), 40);

    // And backwards from the oldest with ending_before.
    let mut back = vec![];
    let mut before = ids.last().cloned().unwrap();
    loop {
        let (_, v) = get(
            &c,
            &base,
            &format!("/v1/customers?limit=9&ending_before={before}"),
            Some(SK),
        )
        .await;
        let page: Vec<String> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_str().unwrap().to_string())
            .collect();
        back.splice(0..0, page.clone());
        if !v["has_more"].as_bool().unwrap() {
            break;
        }
        before = page.first().cloned().unwrap();
    }
    assert_eq!(back, ids[..39].to_vec());

    // Subscriptions: default excludes canceled; status=all includes them.
    let (_, def) = get(&c, &base, "/v1/subscriptions?limit=100", Some(SK)).await;
    let (_, all) = get(
        &c,
        &base,
        "/v1/subscriptions?limit=100&status=all",
        Some(SK),
    )
    .await;
    let (_, canceled) = get(
        &c,
        &base,
        "/v1/subscriptions?limit=100&status=canceled",
        Some(SK),
    )
    .await;
    let n = |v: &Value| v["data"].as_array().unwrap().len();
    assert_eq!(n(&def) + n(&canceled), n(&all));
    assert!(def["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["status"] != "canceled"));
    let platform_subs: usize = truth["customers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["account"] == truth["platform_account"])
        .map(|c| c["subscriptions"].as_array().unwrap().len())
        .sum();
    assert_eq!(n(&all), platform_subs);

    // Items embed prices with per-item periods; expand works on lists.
    let (s, v) = get(
        &c,
        &base,
        "/v1/subscriptions?limit=5&status=all&expand[]=data.default_payment_method&expand[]=data.customer&expand[]=data.items.data.price.product",
        Some(SK),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let sub = &v["data"][0];
    assert_eq!(sub["customer"]["object"], "customer");
    assert_eq!(sub["items"]["data"][0]["price"]["object"], "price");
    assert_eq!(
        sub["items"]["data"][0]["price"]["product"]["object"],
        "product"
    );
    assert!(sub["items"]["data"][0]["current_period_end"]
        .as_i64()
        .is_some());
    assert!(sub.get("current_period_end").is_none());

    // Customer filter + invoices with lines, newest first.
    let cus = truth["customers"][0]["customer"].as_str().unwrap();
    let (_, inv) = get(
        &c,
        &base,
        &format!("/v1/invoices?customer={cus}&limit=100&expand[]=data.lines"),
        Some(SK),
    )
    .await;
    let invs = inv["data"].as_array().unwrap();
    let expected: usize = truth["customers"][0]["invoice_counts"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap() as usize)
        .sum();
    assert_eq!(invs.len(), expected);
    assert!(invs.iter().all(|i| i["customer"] == cus));
    let created: Vec<i64> = invs
        .iter()
        .map(|i| i["created"].as_i64().unwrap())
        .collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]));
    if let Some(i) = invs.first() {
        assert_eq!(i["lines"]["object"], "list");
        assert_eq!(i["parent"]["type"], "subscription_details");
        let (s, one) = get(
            &c,
            &base,
            &format!(
                "/v1/invoices/{}?expand[]=customer",
                i["id"].as_str().unwrap()
            ),
            Some(SK),
        )
        .await;
        assert_eq!(s, 200);
        assert_eq!(one["customer"]["id"], cus);
    }
    // created[] bounds.
    let (_, v) = get(
        &c,
        &base,
        "/v1/invoices?limit=100&created[gte]=1760000000&created[lt]=1762000000",
        Some(SK),
    )
    .await;
    assert!(v["data"].as_array().unwrap().iter().all(|i| {
        let t = i["created"].as_i64().unwrap();
        (1_760_000_000..1_762_000_000).contains(&t)
    }));
    // Bad expansion.
    let (s, _) = get(
        &c,
        &base,
        "/v1/subscriptions?expand[]=data.nonsense",
        Some(SK),
    )
    .await;
    assert_eq!(s, 400);
    fake.stop().await;
}

#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<(String, String)>>>);

async fn receiver(req: HttpRequest, body: web::Bytes, got: web::Data<Received>) -> HttpResponse {
    let sig = req
        .headers()
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    got.0
        .lock()
        .push((sig, String::from_utf8_lossy(&body).into_owned()));
    HttpResponse::Ok().finish()
}

fn verify(sig: &str, body: &str, secret: &str) -> bool {
    let mut t = "";
    let mut v1 = vec![];
    for part in sig.split(',') {
        match part.split_once('=') {
            Some(("t", x)) => t = x,
            Some(("v1", x)) => v1.push(x),
            _ => {}
        }
    }
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let payload = format!("{t}.{body}");
    v1.iter().any(|s| {
        hex::decode(s).is_ok_and(|b| ring::hmac::verify(&key, payload.as_bytes(), &b).is_ok())
    })
}

#[tokio::test]
async fn scenario_via_api_triggers_and_signed_webhooks() {
    let got = Received::default();
    let data = web::Data::new(got.clone());
    let hook = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .default_service(web::to(receiver))
    })
    .workers(1)
    .disable_signals()
    .bind("127.0.0.1:0")
    .unwrap();
    let hook_addr = hook.addrs()[0];
    let hook = hook.run();
    let hook_handle = hook.handle();
    tokio::spawn(hook);

    let fake = FakeServer::start(FakeConfig {
        rate_limit: 0,
        now: Some(stripe_fake::seed::DEFAULT_NOW),
        webhooks: WebhookConfig {
            url: Some(format!("http://{hook_addr}/hook")),
            secret: "whsec_test_secret".into(),
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .unwrap();
    let base = format!("http://{}", fake.addr());
    let c = client();

    let (s, cus) = post(
        &c,
        &base,
        "/v1/customers",
        SK,
        &[
            ("email", "ops@acme.test"),
            ("name", "Acme Inc"),
            ("metadata[cscx_account_id]", "cscx_1"),
        ],
    )
    .await;
    assert_eq!(s, 200, "{cus}");
    let cus_id = cus["id"].as_str().unwrap().to_string();
    assert!(cus_id.starts_with("cus_"));
    assert_eq!(cus["metadata"]["cscx_account_id"], "cscx_1");
    let (s, pm) = post(
        &c,
        &base,
        "/v1/payment_methods/pm_card_visa/attach",
        SK,
        &[("customer", &cus_id)],
    )
    .await;
    assert_eq!(s, 200, "{pm}");
    assert_eq!(pm["card"]["last4"], "4242");
    let pm_id = pm["id"].as_str().unwrap().to_string();
    let (s, _) = post(
        &c,
        &base,
        &format!("/v1/customers/{cus_id}"),
        SK,
        &[("invoice_settings[default_payment_method]", &pm_id)],
    )
    .await;
    assert_eq!(s, 200);
    let (_, prod) = post(&c, &base, "/v1/products", SK, &[("name", "Pro")]).await;
    let prod_id = prod["id"].as_str().unwrap().to_string();
    let (s, price) = post(
        &c,
        &base,
        "/v1/prices",
        SK,
        &[
            ("product", &prod_id),
            ("currency", "usd"),
            ("unit_amount", "2500"),
            ("recurring[interval]", "month"),
        ],
    )
    .await;
    assert_eq!(s, 200, "{price}");
    let price_id = price["id"].as_str().unwrap().to_string();
    let (_, price2) = post(
        &c,
        &base,
        "/v1/prices",
        SK,
        &[
            ("product", &prod_id),
            ("currency", "usd"),
            ("unit_amount", "4000"),
            ("recurring[interval]", "month"),
        ],
    )
    .await;
    let price2_id = price2["id"].as_str().unwrap().to_string();

    // Idempotent create.
    let form = [
        ("customer", cus_id.as_str()),
        ("items[0][price]", price_id.as_str()),
        ("items[0][quantity]", "3"),
    ];
    let r1 = c
        .post(format!("{base}/v1/subscriptions"))
        .bearer_auth(SK)
        .header("Idempotency-Key", "k1")
        .form_body(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r1.status(), 200);
    let sub: Value = r1.json().await.unwrap();
    let r2 = c
        .post(format!("{base}/v1/subscriptions"))
        .bearer_auth(SK)
        .header("Idempotency-Key", "k1")
        .form_body(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r2.headers()
            .get("idempotent-replayed")
            .map(|v| v.to_str().unwrap()),
        Some("true")
    );
    let sub2: Value = r2.json().await.unwrap();
    assert_eq!(sub["id"], sub2["id"]);
    let r3 = c
        .post(format!("{base}/v1/subscriptions"))
        .bearer_auth(SK)
        .header("Idempotency-Key", "k1")
        .form_body(&[
            ("customer", cus_id.as_str()),
            ("items[0][price]", price_id.as_str()),
            ("items[0][quantity]", "4"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r3.status(), 400);
    let e: Value = r3.json().await.unwrap();
    assert_eq!(e["error"]["type"], "idempotency_error");

    let sub_id = sub["id"].as_str().unwrap().to_string();
    assert_eq!(sub["status"], "active");
    let (_, inv) = get(
        &c,
        &base,
        &format!("/v1/invoices/{}", sub["latest_invoice"].as_str().unwrap()),
        Some(SK),
    )
    .await;
    assert_eq!(inv["status"], "paid");
    assert_eq!(inv["amount_paid"], 7500);
    assert_eq!(
        inv["parent"]["subscription_details"]["subscription"],
        sub_id.as_str()
    );

    // Trigger: fail the next payment.
    let t: Value = c
        .post(format!("{base}/_admin/trigger/fail_payment"))
        .json(&serde_json::json!({"subscription": sub_id}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let types: Vec<&str> = t["event_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for want in [
        "charge.failed",
        "invoice.payment_failed",
        "customer.subscription.updated",
    ] {
        assert!(types.contains(&want), "{want} missing from {types:?}");
    }
    let (_, s) = get(&c, &base, &format!("/v1/subscriptions/{sub_id}"), Some(SK)).await;
    assert_eq!(s["status"], "past_due");
    let (_, evs) = get(
        &c,
        &base,
        "/v1/events?type=customer.subscription.updated&limit=100",
        Some(SK),
    )
    .await;
    let ev = evs["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["data"]["previous_attributes"]["status"] == "active")
        .expect("status change event");
    assert_eq!(ev["data"]["object"]["status"], "past_due");
    assert_eq!(ev["api_version"], stripe_fake::API_VERSION);
    let failed_inv = t["invoice"].as_str().unwrap().to_string();
    let (_, inv) = get(&c, &base, &format!("/v1/invoices/{failed_inv}"), Some(SK)).await;
    assert_eq!(inv["status"], "open");
    assert_eq!(inv["attempt_count"], 1);
    assert!(inv["next_payment_attempt"].as_i64().is_some());
    // Basil links an invoice to its attempts only through `payments` (includable) and
    // /v1/invoice_payments: charge.invoice and invoice.payment_intent are gone.
    assert!(inv.get("payments").is_none(), "payments is includable only");
    assert!(inv.get("payment_intent").is_none());
    let (_, with_payments) = get(
        &c,
        &base,
        &format!("/v1/invoices/{failed_inv}?expand[]=payments"),
        Some(SK),
    )
    .await;
    let payment = &with_payments["payments"]["data"][0];
    assert_eq!(payment["object"], "invoice_payment");
    assert_eq!(payment["invoice"], failed_inv.as_str());
    assert_eq!(payment["status"], "open");
    assert_eq!(payment["payment"]["type"], "payment_intent");
    let pi = payment["payment"]["payment_intent"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, charges) = get(
        &c,
        &base,
        &format!("/v1/charges?payment_intent={pi}"),
        Some(SK),
    )
    .await;
    assert_eq!(charges["data"][0]["status"], "failed");
    assert!(charges["data"][0].get("invoice").is_none());
    let (_, listed) = get(
        &c,
        &base,
        &format!("/v1/invoice_payments?invoice={failed_inv}"),
        Some(SK),
    )
    .await;
    assert_eq!(listed["object"], "list");
    assert_eq!(listed["data"][0]["id"], payment["id"]);
    let (_, page) = get(
        &c,
        &base,
        "/v1/invoices?limit=3&expand[]=data.payments",
        Some(SK),
    )
    .await;
    assert!(page["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["payments"]["object"] == "list"));
    let (status, _) = get(&c, &base, "/v1/invoice_payments", Some(SK)).await;
    assert_eq!(status, 400, "invoice is required");

    // Pay it, upgrade, request cancellation, dispute, expire card, advance time.
    let t: Value = c
        .post(format!("{base}/_admin/trigger/pay_invoice"))
        .json(&serde_json::json!({"invoice": failed_inv}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        t["event_types"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v == "invoice.paid"),
        "{t}"
    );
    let (_, s) = get(&c, &base, &format!("/v1/subscriptions/{sub_id}"), Some(SK)).await;
    assert_eq!(s["status"], "active");
    let (st, up) = post(
        &c,
        &base,
        &format!("/v1/subscriptions/{sub_id}"),
        SK,
        &[
            (
                "items[0][id]",
                s["items"]["data"][0]["id"].as_str().unwrap(),
            ),
            ("items[0][price]", &price2_id),
        ],
    )
    .await;
    assert_eq!(st, 200, "{up}");
    assert_eq!(up["items"]["data"][0]["price"]["id"], price2_id.as_str());
    for (kind, body) in [
        (
            "request_cancel",
            serde_json::json!({"subscription": sub_id}),
        ),
        ("dispute", serde_json::json!({"customer": cus_id})),
        ("expire_card", serde_json::json!({"customer": cus_id})),
        ("advance_time", serde_json::json!({"days": 40})),
    ] {
        let r = c
            .post(format!("{base}/_admin/trigger/{kind}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{kind}: {}", r.text().await.unwrap());
    }
    let (_, s) = get(&c, &base, &format!("/v1/subscriptions/{sub_id}"), Some(SK)).await;
    assert_eq!(
        s["status"], "canceled",
        "cancel_at_period_end takes effect when time passes"
    );
    let (_, d) = get(&c, &base, "/v1/disputes", Some(SK)).await;
    assert_eq!(d["data"][0]["status"], "needs_response");

    // Webhooks arrive signed.
    let mut tries = 0;
    while (got.0.lock().len() as u64) < fake.webhook_stats().queued && tries < 200 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        tries += 1;
    }
    let received = got.0.lock().clone();
    assert!(received.len() >= 10, "only {} webhooks", received.len());
    for (sig, body) in &received {
        assert!(
            verify(sig, body, "whsec_test_secret"),
            "bad signature {sig}"
        );
        assert!(!verify(sig, body, "whsec_other"));
        let v: Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["object"], "event");
    }
    let kinds: Vec<String> = received
        .iter()
        .map(|(_, b)| {
            serde_json::from_str::<Value>(b).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    for want in [
        "customer.created",
        "invoice.payment_failed",
        "charge.dispute.created",
        "payment_method.updated",
        "customer.subscription.deleted",
    ] {
        assert!(
            kinds.iter().any(|k| k == want),
            "{want} not delivered: {kinds:?}"
        );
    }
    fake.stop().await;
    hook_handle.stop(true).await;
}

#[tokio::test]
async fn connect_oauth_flow() {
    let fake = FakeServer::start(seeded(5)).await.unwrap();
    let base = format!("http://{}", fake.addr());
    let c = client();
    let r = c
        .get(format!("{base}/oauth/authorize?response_type=code&client_id=ca_fake&scope=read_only&state=xyz&redirect_uri=https://app.test/cb"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let loc = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    let q: std::collections::HashMap<_, _> = loc.query_pairs().into_owned().collect();
    assert_eq!(q["state"], "xyz");
    let code = q["code"].clone();
    let (s, tok) = post(
        &c,
        &base,
        "/oauth/token",
        SK,
        &[("grant_type", "authorization_code"), ("code", &code)],
    )
    .await;
    assert_eq!(s, 200, "{tok}");
    let acct = tok["stripe_user_id"].as_str().unwrap().to_string();
    assert!(acct.starts_with("acct_"));
    assert_eq!(tok["scope"], "read_only");
    assert_eq!(tok["token_type"], "bearer");
    let access = tok["access_token"].as_str().unwrap().to_string();
    // Codes are single-use.
    let (s, e) = post(
        &c,
        &base,
        "/oauth/token",
        SK,
        &[("grant_type", "authorization_code"), ("code", &code)],
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(e["error"], "invalid_grant");
    // The token reads the connected account's (seeded) book, and cannot write.
    let (s, v) = get(&c, &base, "/v1/customers?limit=100", Some(&access)).await;
    assert_eq!(s, 200);
    assert_eq!(v["data"].as_array().unwrap().len(), 6);
    let (s, _) = post(&c, &base, "/v1/customers", &access, &[("email", "x@y.z")]).await;
    assert_eq!(s, 403);
    let (_, a) = get(&c, &base, "/v1/account", Some(&access)).await;
    assert_eq!(a["id"], acct.as_str());
    // Platform key + Stripe-Account reaches the same book.
    let r = c
        .get(format!("{base}/v1/customers?limit=100"))
        .bearer_auth(SK)
        .header("Stripe-Account", &acct)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 6);
    // Deauthorize: event on the account, token revoked.
    let (s, d) = post(
        &c,
        &base,
        "/oauth/deauthorize",
        SK,
        &[("client_id", "ca_fake"), ("stripe_user_id", &acct)],
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(d["stripe_user_id"], acct.as_str());
    let (s, _) = get(&c, &base, "/v1/customers", Some(&access)).await;
    assert_eq!(s, 401);
    let r = c
        .get(format!(
            "{base}/v1/events?type=account.application.deauthorized"
        ))
        .bearer_auth(SK)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (kind, account) = {
        let state = fake.state();
        let st = state.read();
        let ev = st.books[&acct].events.values().next().unwrap();
        (ev.kind.clone(), ev.account.clone())
    };
    assert_eq!(kind, "account.application.deauthorized");
    assert_eq!(account.as_deref(), Some(acct.as_str()));
    fake.stop().await;
}

#[tokio::test]
async fn rate_limit_and_faults() {
    let fake = FakeServer::start(FakeConfig {
        rate_limit: 5,
        ..Default::default()
    })
    .await
    .unwrap();
    let base = format!("http://{}", fake.addr());
    let c = client();
    let mut limited = 0;
    for _ in 0..30 {
        let (s, v) = get(&c, &base, "/v1/customers", Some(SK)).await;
        if s == 429 {
            assert_eq!(v["error"]["code"], "rate_limit");
            limited += 1;
        }
    }
    assert!(limited > 0);
    fake.stop().await;

    let fake = FakeServer::start(FakeConfig {
        rate_limit: 0,
        error_rate: 1.0,
        ..Default::default()
    })
    .await
    .unwrap();
    let base = format!("http://{}", fake.addr());
    let (s, v) = get(&c, &base, "/v1/customers", Some(SK)).await;
    assert!(s == 500 || s == 503);
    assert_eq!(v["error"]["type"], "api_error");
    fake.stop().await;
}

fn fuzz_segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("limit".to_string()),
        Just("created[gte]".to_string()),
        Just("expand[]".to_string()),
        Just("items[0][price]".to_string()),
        Just("starting_after".to_string()),
        Just("status".to_string()),
        "[a-z\\[\\]%0-9=&]{0,12}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn parser_never_panics(input in ".{0,200}") {
        let p = stripe_fake::query::Params::parse(&input);
        let _ = p.expand();
        let _ = p.range("created");
        let _ = p.int("limit");
        let _ = p.check_allowed(&["limit"]);
    }

    #[test]
    fn structured_queries_never_panic(parts in proptest::collection::vec((fuzz_segment(), ".{0,8}"), 0..8)) {
        let q: Vec<String> = parts.iter().map(|(k, v)| format!("{k}={}", url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>())).collect();
        let p = stripe_fake::query::Params::parse(&q.join("&"));
        let _ = p.expand();
        let _ = p.range("created");
    }
}

#[tokio::test]
async fn random_requests_never_break_the_server() {
    let fake = FakeServer::start(seeded(10)).await.unwrap();
    let base = format!("http://{}", fake.addr());
    let c = client();
    let paths = [
        "/v1/customers",
        "/v1/subscriptions",
        "/v1/invoices",
        "/v1/charges",
        "/v1/events",
        "/v1/prices",
        "/v1/payment_methods",
        "/v1/subscriptions/sub_x",
        "/v1/invoices/in_x/pay",
        "/v1/customers/cus_x",
        "/v1/prices",
        "/v1/coupons",
        "/v1/payment_methods/pm_x/attach",
        "/oauth/token",
        "/oauth/authorize",
        "/_admin/trigger/fail_payment",
        "/_admin/reseed",
    ];
    let junk = [
        "",
        "limit=-1",
        "limit=99999999999999999999",
        "expand[]=",
        "expand[][]=x",
        "a[b=c",
        "%ff%fe=1",
        "created[gte][x]=1",
        "items[0][price]=price_x&customer=cus_x",
        "items[][quantity]=x",
        "starting_after=&ending_before=",
        "metadata[a][b]=c",
        "type=card&card[number]=x",
        "trial_end=abc",
        "percent_off=1e9",
        "currency=%00",
        "status=nope",
        "email[]=x",
        "expand[0]=data.customer.bogus.x.y.z",
        "customer=cus_x&items[0][price]=",
    ];
    let mut rng = 7u64;
    for _ in 0..400 {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let path = paths[(rng >> 33) as usize % paths.len()];
        let q = junk[(rng >> 17) as usize % junk.len()];
        let body = junk[(rng >> 45) as usize % junk.len()];
        let req = if rng & 1 == 0 {
            c.get(format!("{base}{path}?{q}"))
        } else {
            c.post(format!("{base}{path}?{q}"))
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(body.to_string())
        };
        let resp = req.bearer_auth(SK).send().await.expect("server answers");
        assert!(
            resp.status().as_u16() < 500,
            "{path}?{q} body={body}: {}",
            resp.status()
        );
    }
    let (s, _) = get(&c, &base, "/v1/customers", Some(SK)).await;
    assert_eq!(s, 200);
    fake.stop().await;
}

async fn trigger(c: &reqwest::Client, base: &str, kind: &str, body: Value) -> (StatusCode, Value) {
    let resp = c
        .post(format!("{base}/_admin/trigger/{kind}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn event_types(reply: &Value) -> Vec<&str> {
    reply["event_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect()
}

/// Disputes render as Stripe's object (no `customer`: a dispute is reached through its
/// charge) and move like Stripe's: chargeback opened with its funds withdrawn, evidence
/// submitted → `under_review`, closed `lost` (the withdrawal stands) or `won` (funds
/// reinstated); an inquiry moves no money and closes `warning_closed`.
#[tokio::test]
async fn disputes_move_like_stripes() {
    let fake = FakeServer::start(seeded(15)).await.unwrap();
    let base = format!("http://{}", fake.addr());
    let c = client();
    let (_, charges) = get(&c, &base, "/v1/charges?limit=100", Some(SK)).await;
    let succeeded: Vec<&Value> = charges["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|ch| ch["status"] == "succeeded" && ch["disputed"] == false)
        .collect();
    assert!(succeeded.len() >= 3, "the seed has too few paid charges");
    let (lost_ch, won_ch, inquiry_ch) = (succeeded[0], succeeded[1], succeeded[2]);

    // A chargeback on a charge: created, then its funds withdrawn.
    let (st, opened) = trigger(
        &c,
        &base,
        "dispute",
        serde_json::json!({"charge": lost_ch["id"], "reason": "subscription_canceled"}),
    )
    .await;
    assert_eq!(st, 200, "{opened}");
    assert_eq!(
        event_types(&opened),
        [
            "charge.dispute.created",
            "charge.dispute.funds_withdrawn",
            "charge.updated"
        ]
    );
    let dp = opened["dispute"].as_str().unwrap().to_owned();
    assert!(dp.starts_with("dp_"));
    let (st, d) = get(&c, &base, &format!("/v1/disputes/{dp}"), Some(SK)).await;
    assert_eq!(st, 200);
    assert_eq!(d["object"], "dispute");
    assert!(
        d.get("customer").is_none(),
        "Stripe's dispute has no customer: {d}"
    );
    assert_eq!(d["charge"], lost_ch["id"]);
    assert_eq!(d["payment_intent"], lost_ch["payment_intent"]);
    assert!(d["payment_intent"].as_str().unwrap().starts_with("pi_"));
    assert_eq!(d["amount"], lost_ch["amount"]);
    assert_eq!(d["currency"], lost_ch["currency"]);
    assert_eq!(d["reason"], "subscription_canceled");
    assert_eq!(d["status"], "needs_response");
    assert_eq!(d["livemode"], false);
    assert_eq!(d["metadata"], serde_json::json!({}));
    assert_eq!(d["is_charge_refundable"], false);
    let created = d["created"].as_i64().unwrap();
    assert!(created >= lost_ch["created"].as_i64().unwrap());
    assert_eq!(
        d["evidence_details"]["due_by"].as_i64().unwrap(),
        created + 7 * 86_400
    );
    assert_eq!(d["evidence_details"]["has_evidence"], false);
    assert_eq!(d["evidence_details"]["submission_count"], 0);
    assert!(d["evidence"]["uncategorized_text"].is_null());
    assert_eq!(d["evidence"]["enhanced_evidence"], serde_json::json!({}));
    assert_eq!(
        d["payment_method_details"]["card"]["case_type"],
        "chargeback"
    );
    let amount = d["amount"].as_i64().unwrap();
    let withdrawal = &d["balance_transactions"][0];
    assert_eq!(d["balance_transactions"].as_array().unwrap().len(), 1);
    assert_eq!(withdrawal["object"], "balance_transaction");
    assert_eq!(withdrawal["amount"].as_i64().unwrap(), -amount);
    assert_eq!(withdrawal["fee"], 1500);
    assert_eq!(withdrawal["net"].as_i64().unwrap(), -amount - 1500);
    assert_eq!(withdrawal["reporting_category"], "dispute");
    assert_eq!(withdrawal["source"], dp.as_str());
    let (_, ch) = get(
        &c,
        &base,
        &format!("/v1/charges/{}", lost_ch["id"].as_str().unwrap()),
        Some(SK),
    )
    .await;
    assert_eq!(ch["disputed"], true);
    let (st, again) = trigger(
        &c,
        &base,
        "dispute",
        serde_json::json!({"charge": lost_ch["id"]}),
    )
    .await;
    assert_eq!(st, 400, "a charge is disputed once: {again}");
    let (_, by_charge) = get(
        &c,
        &base,
        &format!("/v1/disputes?charge={}", lost_ch["id"].as_str().unwrap()),
        Some(SK),
    )
    .await;
    assert_eq!(by_charge["data"].as_array().unwrap().len(), 1);
    assert_eq!(by_charge["data"][0]["id"], dp.as_str());

    // Evidence submitted: under review, once.
    let (st, submitted) = trigger(
        &c,
        &base,
        "submit_dispute_evidence",
        serde_json::json!({"dispute": dp, "text": "Used all month"}),
    )
    .await;
    assert_eq!(st, 200, "{submitted}");
    assert_eq!(submitted["status"], "under_review");
    assert_eq!(event_types(&submitted), ["charge.dispute.updated"]);
    let (_, ev) = get(
        &c,
        &base,
        &format!("/v1/events/{}", submitted["events"][0].as_str().unwrap()),
        Some(SK),
    )
    .await;
    assert_eq!(ev["data"]["object"]["status"], "under_review");
    assert_eq!(
        ev["data"]["previous_attributes"]["status"],
        "needs_response"
    );
    assert_eq!(
        ev["data"]["object"]["evidence"]["uncategorized_text"],
        "Used all month"
    );
    assert_eq!(
        ev["data"]["object"]["evidence_details"]["submission_count"],
        1
    );
    let (st, _) = trigger(
        &c,
        &base,
        "submit_dispute_evidence",
        serde_json::json!({"dispute": dp}),
    )
    .await;
    assert_eq!(st, 400, "under review: no second submission");

    // Lost: closed, the withdrawal made at opening stands.
    let (st, bad) = trigger(
        &c,
        &base,
        "close_dispute",
        serde_json::json!({"dispute": dp, "outcome": "warning_closed"}),
    )
    .await;
    assert_eq!(st, 400, "a chargeback does not close as an inquiry: {bad}");
    let (st, lost) = trigger(
        &c,
        &base,
        "close_dispute",
        serde_json::json!({"dispute": dp, "outcome": "lost"}),
    )
    .await;
    assert_eq!(st, 200, "{lost}");
    assert_eq!(event_types(&lost), ["charge.dispute.closed"]);
    let (_, d) = get(&c, &base, &format!("/v1/disputes/{dp}"), Some(SK)).await;
    assert_eq!(d["status"], "lost");
    assert_eq!(d["balance_transactions"].as_array().unwrap().len(), 1);
    let (st, _) = trigger(
        &c,
        &base,
        "close_dispute",
        serde_json::json!({"dispute": dp, "outcome": "won"}),
    )
    .await;
    assert_eq!(st, 400, "closed is final");

    // Won straight from needs_response (by the customer's newest open dispute): reinstated.
    let (_, opened) = trigger(
        &c,
        &base,
        "dispute",
        serde_json::json!({"charge": won_ch["id"]}),
    )
    .await;
    let won_dp = opened["dispute"].as_str().unwrap().to_owned();
    let (st, won) = trigger(
        &c,
        &base,
        "close_dispute",
        serde_json::json!({"customer": won_ch["customer"], "outcome": "won"}),
    )
    .await;
    assert_eq!(st, 200, "{won}");
    assert_eq!(won["dispute"], won_dp.as_str());
    assert_eq!(
        event_types(&won),
        ["charge.dispute.funds_reinstated", "charge.dispute.closed"]
    );
    let (_, d) = get(&c, &base, &format!("/v1/disputes/{won_dp}"), Some(SK)).await;
    assert_eq!(d["status"], "won");
    let moved: i64 = d["balance_transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["amount"].as_i64().unwrap())
        .sum();
    assert_eq!(moved, 0, "won: the amount is back");
    assert_eq!(
        d["balance_transactions"][1]["reporting_category"],
        "dispute_reversal"
    );

    // An inquiry: no money moves; it closes as warning_closed only.
    let (_, opened) = trigger(
        &c,
        &base,
        "dispute",
        serde_json::json!({"charge": inquiry_ch["id"], "inquiry": true}),
    )
    .await;
    assert_eq!(
        event_types(&opened),
        ["charge.dispute.created", "charge.updated"]
    );
    let inq = opened["dispute"].as_str().unwrap().to_owned();
    let (_, d) = get(&c, &base, &format!("/v1/disputes/{inq}"), Some(SK)).await;
    assert_eq!(d["status"], "warning_needs_response");
    assert_eq!(d["balance_transactions"], serde_json::json!([]));
    assert_eq!(d["payment_method_details"]["card"]["case_type"], "inquiry");
    let (_, submitted) = trigger(
        &c,
        &base,
        "submit_dispute_evidence",
        serde_json::json!({"dispute": inq}),
    )
    .await;
    assert_eq!(submitted["status"], "warning_under_review");
    let (st, _) = trigger(
        &c,
        &base,
        "close_dispute",
        serde_json::json!({"dispute": inq, "outcome": "won"}),
    )
    .await;
    assert_eq!(st, 400);
    let (st, closed) = trigger(
        &c,
        &base,
        "close_dispute",
        serde_json::json!({"dispute": inq, "outcome": "warning_closed"}),
    )
    .await;
    assert_eq!(st, 200, "{closed}");
    assert_eq!(closed["status"], "warning_closed");
    assert_eq!(event_types(&closed), ["charge.dispute.closed"]);
    let (st, none) = trigger(
        &c,
        &base,
        "close_dispute",
        serde_json::json!({"dispute": "dp_missing", "outcome": "won"}),
    )
    .await;
    assert_eq!(st, 404, "{none}");
    fake.stop().await;
}

#[tokio::test]
async fn faults_change_while_serving_and_bad_fields_change_nothing() {
    let fake = FakeServer::start(seeded(5)).await.unwrap();
    let base = format!("http://{}", fake.addr());
    let c = client();
    let set = |body: Value| {
        let c = c.clone();
        let url = format!("{base}/_admin/faults");
        async move {
            let resp = c.post(url).json(&body).send().await.unwrap();
            (resp.status(), resp.json::<Value>().await.unwrap())
        }
    };

    let (status, now) =
        set(serde_json::json!({"error_rate": 1.0, "webhook_duplicate_copies": 3})).await;
    assert_eq!(status, 200);
    assert_eq!(now["error_rate"], 1.0);
    assert_eq!(now["webhook_duplicate_copies"], 3);
    let (s, _) = get(&c, &base, "/v1/customers", Some(SK)).await;
    assert!(s == 500 || s == 503, "{s}");

    // One bad field: refused, and the good one beside it is not applied either.
    let (status, body) = set(serde_json::json!({"error_rate": 0.0, "rate_limit": -1})).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = set(serde_json::json!({"error_rate": 0.0, "drop": 1})).await;
    assert_eq!(status, 400);
    assert!(body.to_string().contains("unknown fault 'drop'"), "{body}");
    let now: Value = c
        .get(format!("{base}/_admin/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(now["error_rate"], 1.0);

    let (_, now) = set(serde_json::json!({"error_rate": 0.0, "rate_limit": 2})).await;
    assert_eq!(
        (now["error_rate"].as_f64(), now["rate_limit"].as_u64()),
        (Some(0.0), Some(2))
    );
    let mut codes = vec![];
    for _ in 0..4 {
        codes.push(get(&c, &base, "/v1/customers", Some(SK)).await.0.as_u16());
    }
    assert_eq!(&codes[..2], [200, 200]);
    assert!(codes[2..].contains(&429), "{codes:?}");
    fake.stop().await;
}
