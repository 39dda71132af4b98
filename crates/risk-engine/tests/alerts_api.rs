//! A CSM types "alert me on payment failures" into query-api's chat; the risk engine stores the
//! rule; a failed payment on the CSM's account becomes an alert the CSM reads back through the
//! API and that reaches the tenant's webhook, signed, once, after a retry. Roles, tenancy, bad
//! commands and bad URLs are refused at the API with nothing published.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use contracts::{v1, Contract};
use platform::amqp::{Broker, Outgoing, Publisher};
use platform::testing::{ServiceProcess, TestEnv};
use query_api::auth::Role;
use reqwest::Method;
use serde_json::{json, Value};

const JWT: &[u8] = b"alerts-api-test-secret-alerts-api-test!!";
const TENANT: &str = "tenant-alerts";

async fn publish<M: Contract>(publisher: &Publisher, message: &M, id: &str) {
    publisher
        .publish(&Outgoing::protobuf(
            M::EXCHANGE,
            message.routing_key(),
            id,
            M::TYPE,
            TENANT,
            message.encode_to_vec(),
        ))
        .await
        .unwrap();
}

/// Polls a GET until `check` holds on its `data`.
async fn until(
    api: &query_api::testing::InProcess,
    path: &str,
    token: &str,
    check: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let mut last = Vec::new();
    for _ in 0..100 {
        let (status, body) = api.call(Method::GET, path, Some(token), None).await;
        assert_eq!(status, 200, "{path}: {body}");
        last = body["data"].as_array().cloned().unwrap_or_default();
        if check(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{path} never satisfied the check: {last:#?}");
}

/// What the tenant's webhook receiver saw: (signature header, idempotency key, body, answered).
type Received = Arc<Mutex<Vec<(Option<String>, Option<String>, Vec<u8>, u16)>>>;

/// A receiver that fails its first request (503) and accepts the rest.
fn receiver() -> (String, Received, actix_web::dev::ServerHandle) {
    let received: Received = Arc::default();
    let seen = received.clone();
    let server = actix_web::HttpServer::new(move || {
        let seen = seen.clone();
        actix_web::App::new().route(
            "/hooks/cscx",
            actix_web::web::post().to(
                move |req: actix_web::HttpRequest, body: actix_web::web::Bytes| {
                    let seen = seen.clone();
                    async move {
                        let header = |name: &str| {
                            req.headers()
                                .get(name)
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_owned)
                        };
                        let mut seen = seen.lock().unwrap();
                        let status = if seen.is_empty() { 503 } else { 200 };
                        seen.push((
                            header("cscx-signature"),
                            header("idempotency-key"),
                            body.to_vec(),
                            status,
                        ));
                        actix_web::HttpResponse::build(
                            actix_web::http::StatusCode::from_u16(status).unwrap(),
                        )
                        .finish()
                    }
                },
            ),
        )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let port = server.addrs()[0].port();
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    (
        format!("http://127.0.0.1:{port}/hooks/cscx"),
        received,
        handle,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn alert_me_on_payment_failures_through_chat() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let env = TestEnv::new();
    let master = base64::engine::general_purpose::STANDARD.encode([5u8; 32]);
    let keys_env = format!("k1:{master}");
    let mut engine = ServiceProcess::spawn(
        env!("CARGO_BIN_EXE_risk-engine"),
        "risk_engine",
        &env,
        &[
            ("BILLING_MASTER_KEYS", keys_env.as_str()),
            ("BILLING__RISK_ENGINE__DELIVERY_RETRY_BASE_MS", "200"),
        ],
    );
    engine.wait_for_status("/readyz", 200).await;
    let (hook_url, received, hook_server) = receiver();
    let api = query_api::testing::InProcess::start(
        env.common.clone(),
        query_api::testing::settings(true),
        JWT,
        [5u8; 32],
    )
    .await;
    let keys = &api.keys;
    let ana = keys.mint(TENANT, "csm-ana", &[Role::Csm], 600).unwrap();
    let bob = keys.mint(TENANT, "csm-bob", &[Role::Csm], 600).unwrap();
    let admin = keys.mint(TENANT, "admin-al", &[Role::Admin], 600).unwrap();
    let stranger = keys
        .mint("tenant-else", "csm-ana", &[Role::Csm], 600)
        .unwrap();

    // Bad commands: explained, nothing stored.
    let (status, body) = api
        .call(
            Method::POST,
            "/api/stripe/chat",
            Some(&ana),
            Some(json!({"text": "alert me on the weather"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("payment failures"),
        "{body}"
    );
    assert_eq!(
        api.call(
            Method::POST,
            "/api/stripe/chat",
            None,
            Some(json!({"text": "alert me on payment failures"}))
        )
        .await
        .0,
        401
    );
    assert_eq!(
        api.call(
            Method::POST,
            "/api/stripe/chat",
            Some(&ana),
            Some(json!({"text": ""}))
        )
        .await
        .0,
        400
    );
    let (status, _) = api
        .call(
            Method::POST,
            "/api/alerts/rules",
            Some(&bob),
            Some(json!({"kinds": ["payment_failed"], "csm_user_id": "csm-ana"})),
        )
        .await;
    assert_eq!(status, 403, "a CSM sets only their own rules");
    for bad in [
        json!({"kinds": ["weather"]}),
        json!({"scope": "world"}),
        json!({"min_severity": "urgent"}),
        json!({"delivery": "weekly"}),
        json!({"nonsense": 1}),
    ] {
        assert_eq!(
            api.call(
                Method::POST,
                "/api/alerts/rules",
                Some(&ana),
                Some(bad.clone())
            )
            .await
            .0,
            400,
            "{bad}"
        );
    }

    // The command: a rule for Ana, confirmed in words.
    let (status, reply) = api
        .call(
            Method::POST,
            "/api/stripe/chat",
            Some(&ana),
            Some(json!({"text": "Alert me on payment failures"})),
        )
        .await;
    assert_eq!(status, 202, "{reply}");
    assert!(
        reply["reply"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("payment"),
        "{reply}"
    );
    let rules = until(&api, "/api/alerts/rules", &ana, |d| d.len() == 1).await;
    assert_eq!(rules[0]["kinds"], json!(["payment_failed"]));
    assert_eq!(rules[0]["scope"], "mine");
    assert_eq!(rules[0]["rule_id"], reply["answer"]["rule_id"]);
    // An admin sets one for Bob; other tenants see nothing.
    let (status, _) = api
        .call(Method::POST, "/api/alerts/rules", Some(&admin), Some(json!({"kinds": [], "scope": "tenant", "min_severity": "critical", "csm_user_id": "csm-bob"})))
        .await;
    assert_eq!(status, 202);
    until(&api, "/api/alerts/rules", &bob, |d| d.len() == 1).await;
    let (_, foreign) = api
        .call(Method::GET, "/api/alerts/rules", Some(&stranger), None)
        .await;
    assert_eq!(foreign["data"], json!([]));

    // The tenant's webhook: admins only, https unless allowed (allowed here), no credentials;
    // the secret is shown once.
    let hook = json!({"url": hook_url});
    assert_eq!(
        api.call(
            Method::PUT,
            "/api/alerts/webhook",
            Some(&ana),
            Some(hook.clone())
        )
        .await
        .0,
        403
    );
    assert_eq!(
        api.call(Method::GET, "/api/alerts/webhook", Some(&admin), None)
            .await
            .0,
        404
    );
    for bad in [
        "ftp://example.com/x",
        "http://user:pw@127.0.0.1/x",
        "nonsense",
    ] {
        assert_eq!(
            api.call(
                Method::PUT,
                "/api/alerts/webhook",
                Some(&admin),
                Some(json!({"url": bad}))
            )
            .await
            .0,
            400,
            "{bad}"
        );
    }
    let (status, set) = api
        .call(Method::PUT, "/api/alerts/webhook", Some(&admin), Some(hook))
        .await;
    assert_eq!(status, 200, "{set}");
    let secret = set["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let (_, shown) = api
        .call(Method::GET, "/api/alerts/webhook", Some(&admin), None)
        .await;
    assert_eq!(shown["url"], hook_url.as_str());
    assert!(
        !shown.to_string().contains(&secret),
        "the secret is never shown again"
    );

    // A payment fails on Ana's account: she is alerted, once.
    let broker = Broker::new(env.common.amqp.clone(), risk_engine::spec().topology);
    broker.connection().await.unwrap();
    let publisher = Publisher::new(broker.clone());
    publish(
        &publisher,
        &v1::CustomerLinkChanged {
            tenant_id: TENANT.into(),
            stripe_account_id: "acct_x".into(),
            stripe_customer_id: "cus_alert1".into(),
            account_id_after: "acc_ana".into(),
            status: "linked".into(),
            csm_user_id: "csm-ana".into(),
            version: 1,
            ..Default::default()
        },
        "link-1",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let now = chrono::Utc::now().timestamp();
    let invoice = v1::InvoiceUpdated {
        context: Some(v1::FactContext {
            tenant_id: TENANT.into(),
            account_id: "acct_x".into(),
            occurred_at: now,
            source: "event".into(),
            event_id: "evt_a".into(),
        }),
        stripe_customer_id: "cus_alert1".into(),
        stripe_invoice_id: "in_alert1".into(),
        status: "open".into(),
        amount_due: 12_000,
        amount_remaining: 12_000,
        currency: "eur".into(),
        attempt_count: 1,
        next_payment_attempt: now + 86_400,
        ..Default::default()
    };
    publish(&publisher, &invoice, "inv-1").await;
    publish(&publisher, &invoice, "inv-1").await;
    let alerts = until(&api, "/api/alerts", &ana, |d| !d.is_empty()).await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["kind"], "payment_failed");
    assert_eq!(alerts[0]["account_id"], "acc_ana");
    // …and the alert reached the webhook: refused once (503), retried, delivered, signed.
    let mut delivered = Vec::new();
    for _ in 0..100 {
        delivered = received.lock().unwrap().clone();
        if delivered.iter().any(|d| d.3 == 200) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        delivered.len(),
        2,
        "one refusal, one delivery: {delivered:?}"
    );
    let verifier = domain::webhook_signature::Verifier::new(&[secret.as_str()], 300);
    for (signature, key, body, _) in &delivered {
        verifier
            .verify(
                signature.as_deref(),
                body.clone(),
                chrono::Utc::now().timestamp(),
            )
            .expect("signed with the tenant's secret");
        assert_eq!(
            key.as_deref(),
            alerts[0]["alert_id"].as_str(),
            "idempotency key = alert id"
        );
    }
    let payload: Value = serde_json::from_slice(&delivered[1].2).unwrap();
    assert_eq!(payload["type"], "alert.created");
    assert_eq!(payload["alert"]["kind"], "payment_failed");
    assert_eq!(payload["alert"]["csm_user_id"], "csm-ana");
    let state = until(&api, "/api/alerts", &ana, |d| {
        d[0]["webhook_status"] == "delivered"
    })
    .await;
    assert_eq!(state[0]["webhook_attempts"], 2);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        received.lock().unwrap().len(),
        2,
        "nothing after the delivery"
    );
    assert!(verifier
        .verify(
            delivered[1].0.as_deref(),
            b"tampered".to_vec(),
            chrono::Utc::now().timestamp()
        )
        .is_err());

    let (_, bobs) = api.call(Method::GET, "/api/alerts", Some(&bob), None).await;
    assert_eq!(bobs["data"], json!([]), "Bob's rule wants critical only");
    let (_, foreign) = api
        .call(Method::GET, "/api/alerts", Some(&stranger), None)
        .await;
    assert_eq!(foreign["data"], json!([]));

    // Ana deletes her rule; Bob cannot delete it for her.
    let rule_id = rules[0]["rule_id"].as_str().unwrap().to_owned();
    assert_eq!(
        api.call(
            Method::DELETE,
            &format!("/api/alerts/rules/{rule_id}"),
            Some(&bob),
            None
        )
        .await
        .0,
        403
    );
    assert_eq!(
        api.call(
            Method::DELETE,
            "/api/alerts/rules/rule_unknown",
            Some(&ana),
            None
        )
        .await
        .0,
        404
    );
    assert_eq!(
        api.call(
            Method::DELETE,
            &format!("/api/alerts/rules/{rule_id}"),
            Some(&ana),
            None
        )
        .await
        .0,
        202
    );
    until(&api, "/api/alerts/rules", &ana, |d| d.is_empty()).await;

    api.stop().await;
    hook_server.stop(true).await;
    assert!(engine.terminate().success());
    env.cleanup(&[&*broker]).await;
}
