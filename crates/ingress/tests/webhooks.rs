//! Ingress against the real Postgres and RabbitMQ: every bad input refused with no row and no
//! message; good events stored once, answered 2xx after the commit, published with confirms;
//! the broker or the database going away.

use std::{net::SocketAddr, time::Duration};

use contracts::v1::StripeEventReceived;
use diesel::{sql_types::BigInt, QueryableByName};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use domain::webhook_signature::header_value;
use ingress::{app::Application, settings::IngressSettings};
use lapin::options::BasicGetOptions;
use platform::{
    amqp::{Broker, QueueSpec, Topology},
    testing::{TcpProxy, TestEnv},
    CancellationToken,
};
use prost::Message as _;

const SECRET: &str = "whsec_ingress_test";
const OLD_SECRET: &str = "whsec_ingress_old";
const CONNECT_SECRET: &str = "whsec_connect_test";

fn settings() -> IngressSettings {
    IngressSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        signature_tolerance_secs: 300,
        max_body_bytes: 1024 * 1024,
        body_read_timeout_ms: 500,
        default_tenant: "tenant-a".into(),
        group_commit_max: 64,
        outbox_batch: 100,
        outbox_poll_ms: 200,
        platform_secrets: vec![SECRET.into(), OLD_SECRET.into()],
        connect_secrets: vec![CONNECT_SECRET.into()],
    }
}

struct TestApp {
    env: TestEnv,
    base: String,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    observer: std::sync::Arc<Broker>,
    client: reqwest::Client,
}

impl TestApp {
    async fn start_with(
        env: TestEnv,
        mut common_override: Option<platform::config::CommonSettings>,
    ) -> Self {
        platform::testing::init_telemetry();
        // A queue of our own on stripe.events lets the test see exactly what was published.
        let observer = Broker::new(
            env.common.amqp.clone(),
            Topology::new()
                .queue(QueueSpec::new("observer").bind(contracts::exchanges::STRIPE_EVENTS, "#")),
        );
        observer.connection().await.unwrap();
        let common = common_override.take().unwrap_or_else(|| env.common.clone());
        let app = Application::build(common, settings()).unwrap();
        let base = format!("http://127.0.0.1:{}", app.port());
        let readiness = app.readiness();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(app.run_until_stopped(cancel.clone()));
        platform::testing::wait_for_database(&readiness).await;
        Self {
            env,
            base,
            cancel,
            task,
            observer,
            client: reqwest::Client::new(),
        }
    }

    async fn start() -> Self {
        Self::start_with(TestEnv::new(), None).await
    }

    async fn post(
        &self,
        path: &str,
        body: &[u8],
        signature: Option<String>,
        content_type: &str,
    ) -> (u16, String) {
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body.to_vec());
        if let Some(sig) = signature {
            req = req.header("stripe-signature", sig);
        }
        let resp = req.send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    async fn send(&self, body: &[u8]) -> (u16, String) {
        let sig = header_value(SECRET, now(), body);
        self.post(
            "/api/integrations/stripe/webhook",
            body,
            Some(sig),
            "application/json; charset=utf-8",
        )
        .await
    }

    async fn rows(&self) -> i64 {
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let mut conn = AsyncPgConnection::establish(&self.env.common.database.url)
            .await
            .unwrap();
        let rows: Vec<Count> = diesel::sql_query("SELECT count(*) AS n FROM ingress.events")
            .load(&mut conn)
            .await
            .unwrap();
        rows[0].n
    }

    async fn published(&self) -> Vec<(StripeEventReceived, Vec<(String, String)>)> {
        let conn = self.observer.connection().await.unwrap();
        let channel = conn.create_channel().await.unwrap();
        let mut out = Vec::new();
        while let Some(got) = channel
            .basic_get(
                self.observer.name("observer").into(),
                BasicGetOptions { no_ack: true },
            )
            .await
            .unwrap()
        {
            let props = &got.delivery.properties;
            let mut headers = vec![
                (
                    "message_id".to_string(),
                    props
                        .message_id()
                        .clone()
                        .map(|s| s.to_string())
                        .unwrap_or_default(),
                ),
                (
                    "type".to_string(),
                    props
                        .kind()
                        .clone()
                        .map(|s| s.to_string())
                        .unwrap_or_default(),
                ),
                (
                    "routing_key".to_string(),
                    got.delivery.routing_key.to_string(),
                ),
            ];
            if let Some(table) = props.headers() {
                for (k, v) in table.inner() {
                    if let lapin::types::AMQPValue::LongString(s) = v {
                        headers.push((
                            k.to_string(),
                            String::from_utf8_lossy(s.as_bytes()).into_owned(),
                        ));
                    }
                }
            }
            out.push((
                StripeEventReceived::decode(&*got.delivery.data).unwrap(),
                headers,
            ));
        }
        out
    }

    /// Waits until `n` messages have been published (and collects them).
    async fn wait_published(&self, n: usize) -> Vec<(StripeEventReceived, Vec<(String, String)>)> {
        let mut all = Vec::new();
        for _ in 0..200 {
            all.extend(self.published().await);
            if all.len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        all
    }

    async fn stop(self) {
        self.cancel.cancel();
        self.task.await.unwrap().unwrap();
        self.env.cleanup(&[&self.observer]).await;
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn event(id: &str, ty: &str) -> Vec<u8> {
    serde_json::json!({
        "id": id, "object": "event", "type": ty, "created": now(), "livemode": false,
        "api_version": "2025-03-31.basil", "pending_webhooks": 1,
        "data": { "object": { "id": "in_123", "object": "invoice", "customer": "cus_1", "amount_due": 10000, "attempt_count": 2 } }
    })
    .to_string()
    .into_bytes()
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_verified_event_is_stored_once_and_published_once() {
    let app = TestApp::start().await;
    let body = event("evt_good_1", "invoice.payment_failed");
    let (status, text) = app.send(&body).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("\"duplicate\":false"));
    // Stripe retries: answered 2xx again, stored and published once.
    let (status, text) = app.send(&body).await;
    assert_eq!(status, 200);
    assert!(text.contains("\"duplicate\":true"));
    assert_eq!(app.rows().await, 1);

    let published = app.wait_published(1).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut published = published;
    published.extend(app.published().await);
    assert_eq!(published.len(), 1, "published exactly once");
    let (message, headers) = &published[0];
    assert_eq!(message.event_id, "evt_good_1");
    assert_eq!(message.event_type, "invoice.payment_failed");
    assert_eq!(
        message.payload, body,
        "the raw verified body travels untouched"
    );
    assert_eq!(message.endpoint, "platform");
    assert_eq!(header(headers, "message_id"), "evt_good_1");
    assert_eq!(header(headers, "type"), "billing.v1.StripeEventReceived");
    assert_eq!(header(headers, "routing_key"), "invoice.payment_failed");
    assert_eq!(header(headers, "tenant_id"), "tenant-a");
    assert!(
        platform::telemetry::trace_id_of(header(headers, "traceparent")).is_some(),
        "{headers:?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rotated_secrets_connect_endpoint_and_unknown_types_are_accepted() {
    let app = TestApp::start().await;
    // Signed with the old secret while rotating.
    let body = event("evt_old_secret", "customer.subscription.updated");
    let sig = header_value(OLD_SECRET, now(), &body);
    assert_eq!(
        app.post(
            "/api/integrations/stripe/webhook",
            &body,
            Some(sig),
            "application/json"
        )
        .await
        .0,
        200
    );
    // Stripe adds event types: stored and published.
    let body = event("evt_new_type", "brand_new.thing_happened");
    assert_eq!(app.send(&body).await.0, 200);
    // Connect endpoint has its own secret and routes by account: acct_123 is connected by
    // tenant-c (query-api's read model, stood in for here), acct_999 by nobody.
    let mut conn = AsyncPgConnection::establish(&app.env.common.database.url)
        .await
        .unwrap();
    diesel::sql_query("CREATE SCHEMA IF NOT EXISTS integration")
        .execute(&mut conn)
        .await
        .unwrap();
    diesel::sql_query(
        "CREATE TABLE integration.account_tenants AS SELECT 'acct_123'::text AS account_id, 'tenant-c'::text AS tenant_id",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let mut unknown: serde_json::Value =
        serde_json::from_slice(&event("evt_connect_unknown", "invoice.paid")).unwrap();
    unknown["account"] = "acct_999".into();
    let body = unknown.to_string().into_bytes();
    let sig = header_value(CONNECT_SECRET, now(), &body);
    assert_eq!(
        app.post(
            "/api/integrations/stripe/webhook/connect",
            &body,
            Some(sig),
            "application/json"
        )
        .await
        .0,
        200
    );
    let mut connect: serde_json::Value =
        serde_json::from_slice(&event("evt_connect", "invoice.paid")).unwrap();
    connect["account"] = "acct_123".into();
    let body = connect.to_string().into_bytes();
    let platform_sig = header_value(SECRET, now(), &body);
    assert_eq!(
        app.post(
            "/api/integrations/stripe/webhook/connect",
            &body,
            Some(platform_sig),
            "application/json"
        )
        .await
        .0,
        400
    );
    let sig = header_value(CONNECT_SECRET, now(), &body);
    assert_eq!(
        app.post(
            "/api/integrations/stripe/webhook/connect",
            &body,
            Some(sig),
            "application/json"
        )
        .await
        .0,
        200
    );
    assert_eq!(app.rows().await, 4);
    let published = app.wait_published(4).await;
    assert_eq!(published.len(), 4);
    let find = |id: &str| published.iter().find(|(m, _)| m.event_id == id).unwrap();
    let connect_msg = find("evt_connect");
    assert_eq!(connect_msg.0.account, "acct_123");
    assert_eq!(connect_msg.0.endpoint, "connect");
    assert_eq!(
        header(&connect_msg.1, "tenant_id"),
        "tenant-c",
        "routed by account"
    );
    assert_eq!(
        header(&find("evt_connect_unknown").1, "tenant_id"),
        "",
        "stored and published, not dropped"
    );
    assert_eq!(header(&find("evt_old_secret").1, "tenant_id"), "tenant-a");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_bad_input_is_refused_without_a_trace() {
    let app = TestApp::start().await;
    let body = event("evt_bad", "invoice.paid");
    let good_sig = header_value(SECRET, now(), &body);
    let path = "/api/integrations/stripe/webhook";
    let mut tampered = body.clone();
    let last = tampered.len() - 2;
    tampered[last] = b' ';
    let big = vec![b' '; 1024 * 1024 + 1];
    let no_id = br#"{"object":"event","type":"invoice.paid","created":1700000000}"#.to_vec();
    let not_json = b"this is not json".to_vec();

    // (case, body, Stripe-Signature, content type, expected status, expected error code)
    type Case<'a> = (&'a str, Vec<u8>, Option<String>, &'a str, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "missing header",
            body.clone(),
            None,
            "application/json",
            400,
            "missing_header",
        ),
        (
            "malformed header",
            body.clone(),
            Some("t=abc".into()),
            "application/json",
            400,
            "malformed_header",
        ),
        (
            "wrong secret",
            body.clone(),
            Some(header_value("whsec_wrong", now(), &body)),
            "application/json",
            400,
            "mismatch",
        ),
        (
            "stale",
            body.clone(),
            Some(header_value(SECRET, now() - 301, &body)),
            "application/json",
            400,
            "stale",
        ),
        (
            "future",
            body.clone(),
            Some(header_value(SECRET, now() + 400, &body)),
            "application/json",
            400,
            "future",
        ),
        (
            "tampered",
            tampered,
            Some(good_sig.clone()),
            "application/json",
            400,
            "mismatch",
        ),
        (
            "too large",
            big.clone(),
            Some(header_value(SECRET, now(), &big)),
            "application/json",
            413,
            "too_large",
        ),
        (
            "content type",
            body.clone(),
            Some(good_sig.clone()),
            "text/plain",
            415,
            "content_type",
        ),
        (
            "verified not json",
            not_json.clone(),
            Some(header_value(SECRET, now(), &not_json)),
            "application/json",
            400,
            "malformed_event",
        ),
        (
            "verified no id",
            no_id.clone(),
            Some(header_value(SECRET, now(), &no_id)),
            "application/json",
            400,
            "malformed_event",
        ),
    ];
    for (name, body, sig, ct, status, code) in cases {
        let (got, text) = app.post(path, &body, sig, ct).await;
        assert_eq!(got, status, "{name}: {text}");
        assert!(text.contains(code), "{name}: {text}");
        assert!(
            !text.contains("evt_bad") && !text.contains(SECRET),
            "{name} echoes input: {text}"
        );
    }
    assert_eq!(app.rows().await, 0);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(app.published().await.is_empty());

    let metrics = reqwest::get(format!("{}/metrics", app.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("ingress_webhooks_rejected_total"),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_body_is_cut_off() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let app = TestApp::start().await;
    let addr: SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = "POST /api/integrations/stripe/webhook HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nstripe-signature: t=1,v1=00\r\ncontent-length: 1000\r\n\r\n{\"id\":";
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut response = vec![0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut response))
        .await
        .expect("cut off")
        .unwrap_or(0);
    let text = String::from_utf8_lossy(&response[..n]);
    assert!(n == 0 || text.starts_with("HTTP/1.1 408"), "{text}");
    assert_eq!(app.rows().await, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn broker_down_webhooks_are_held_and_published_when_it_returns() {
    let env = TestEnv::new();
    let proxy = TcpProxy::start("127.0.0.1:5672".parse().unwrap()).await;
    let mut common = env.common.clone();
    common.amqp.url = format!("amqp://guest:guest@127.0.0.1:{}/%2f", proxy.port);
    let app = TestApp::start_with(env, Some(common)).await;
    assert_eq!(app.send(&event("evt_before", "invoice.paid")).await.0, 200);
    assert_eq!(app.wait_published(1).await.len(), 1);

    proxy.down();
    for i in 0..20 {
        let (status, text) = app
            .send(&event(&format!("evt_during_{i}"), "invoice.payment_failed"))
            .await;
        assert_eq!(status, 200, "{text}");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        app.published().await.is_empty(),
        "nothing can be published while the broker is away"
    );
    assert_eq!(app.rows().await, 21);

    proxy.up();
    let published = app.wait_published(20).await;
    let mut ids: Vec<_> = published.iter().map(|(m, _)| m.event_id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20, "every held event published");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn database_down_answers_503_and_writes_nothing() {
    let env = TestEnv::new();
    let proxy = TcpProxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let mut common = env.common.clone();
    common.database.url = format!(
        "postgres://postgres@127.0.0.1:{}/{}",
        proxy.port, env.database
    );
    let app = TestApp::start_with(env, Some(common)).await;
    assert_eq!(app.send(&event("evt_db_1", "invoice.paid")).await.0, 200);

    proxy.down();
    let (status, text) = app.send(&event("evt_db_2", "invoice.paid")).await;
    assert_eq!(status, 503, "{text}");
    proxy.up();
    // Stripe retries; now it is stored.
    let mut stored = false;
    for _ in 0..50 {
        if app.send(&event("evt_db_2", "invoice.paid")).await.0 == 200 {
            stored = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(stored);
    assert_eq!(app.rows().await, 2);
    app.stop().await;
}
