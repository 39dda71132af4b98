//! The whole product, every service its own process as Kubernetes runs it, over the real
//! Postgres and RabbitMQ, with the Stripe fake as Stripe:
//!
//! 1. an admin connects Stripe through query-api with a restricted key; the backfill it queues
//!    fills `billing`; CSCX's accounts arrive on `cscx.accounts`; the matcher links every
//!    customer; a customer already in dunning at connect time has its signal from the
//!    backfill alone;
//! 2. a renewal payment fails at "Stripe": the signed webhooks go through ingress, the sync
//!    worker, the risk engine — one trace from the webhook to the signal — and the CSM sees
//!    the signal, the lower health and the alert the chat asked for through the API;
//! 3. finance re-assigns the customer in Stripe (metadata): ingress → sync → matcher → risk in
//!    one trace; the open signal and the health follow the customer to its new account;
//! 4. the invoice is paid: the signal resolves and the new account's health recovers.
//!
//! The service binaries come from the workspace build (`make test` builds them all).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use contracts::{exchanges, v1, Contract as _};
use diesel::sql_types::{BigInt, Text};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl as _;
use e2e::workspace_binary;
use futures_util::StreamExt as _;
use platform::amqp::{Broker, Outgoing, Publisher, QueueSpec};
use platform::db;
use platform::telemetry::trace_id_of;
use platform::testing::{ServiceProcess, TestEnv};
use prost::Message as _;
use query_api::auth::{Role, TokenKeys};
use serde_json::{json, Value};
use stripe_fake::{FakeConfig, FakeServer, SeedOptions, Truth, WebhookConfig};

const TENANT: &str = "tenant-e2e";
const WEBHOOK_SECRET: &str = "whsec_e2e_only";
const JWT_SECRET: &str = "e2e-only-jwt-secret-e2e-only-jwt-secret!";
const CSM: &str = "csm-e2e";
const OBSERVER: &str = "e2e.observer";
const WAIT: Duration = Duration::from_secs(60);

/// One message seen on the bus.
#[derive(Debug, Clone)]
struct Seen {
    exchange: String,
    routing_key: String,
    trace_id: Option<String>,
    data: Vec<u8>,
}

#[derive(Default, Clone)]
struct Bus(Arc<Mutex<Vec<Seen>>>);

impl Bus {
    /// Waits for a message on `exchange` whose routing key starts with `key` and that `check`
    /// accepts.
    async fn wait_for(&self, exchange: &str, key: &str, check: impl Fn(&Seen) -> bool) -> Seen {
        let started = Instant::now();
        loop {
            if let Some(seen) = self
                .0
                .lock()
                .unwrap()
                .iter()
                .find(|s| s.exchange == exchange && s.routing_key.starts_with(key) && check(s))
            {
                return seen.clone();
            }
            assert!(
                started.elapsed() < WAIT,
                "nothing on {exchange} {key}… matched; saw {:?}",
                self.0
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|s| format!("{} {}", s.exchange, s.routing_key))
                    .collect::<BTreeSet<_>>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn all(&self, exchange: &str, key: &str) -> Vec<Seen> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.exchange == exchange && s.routing_key.starts_with(key))
            .cloned()
            .collect()
    }
}

fn traceparent(delivery: &lapin::message::Delivery) -> Option<String> {
    let table = delivery.properties.headers().as_ref()?;
    table.inner().iter().find_map(|(k, v)| match v {
        lapin::types::AMQPValue::LongString(s) if k.as_str() == "traceparent" => {
            Some(String::from_utf8_lossy(s.as_bytes()).into_owned())
        }
        _ => None,
    })
}

/// Records every message on the exchanges the pipeline speaks on.
async fn observe(env: &TestEnv) -> (Arc<Broker>, Bus) {
    let topology = risk_engine::spec()
        .topology
        .exchange(exchanges::STRIPE_EVENTS)
        .exchange(exchanges::MATCHING)
        .queue(
            QueueSpec::new(OBSERVER)
                .bind(exchanges::STRIPE_EVENTS, "#")
                .bind(exchanges::BILLING, "#")
                .bind(exchanges::MATCHING, "#")
                .bind(exchanges::RISK, "#"),
        );
    let broker = Broker::new(env.common.amqp.clone(), topology);
    let conn = broker.connection().await.unwrap();
    let channel = conn.create_channel().await.unwrap();
    let mut consumer = channel
        .basic_consume(
            broker.name(OBSERVER).into(),
            "e2e".into(),
            lapin::options::BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            lapin::types::FieldTable::default(),
        )
        .await
        .unwrap();
    let bus = Bus::default();
    let seen = bus.clone();
    let namespace = env.common.amqp.namespace.clone();
    tokio::spawn(async move {
        let _channel = channel;
        while let Some(Ok(delivery)) = consumer.next().await {
            let exchange = delivery.exchange.to_string();
            seen.0.lock().unwrap().push(Seen {
                exchange: exchange
                    .strip_prefix(&namespace)
                    .unwrap_or(&exchange)
                    .to_owned(),
                routing_key: delivery.routing_key.to_string(),
                trace_id: traceparent(&delivery).and_then(|t| trace_id_of(&t).map(str::to_owned)),
                data: delivery.data.clone(),
            });
        }
    });
    (broker, bus)
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn count(pool: &db::PgPool, sql: &str, bind: &str) -> i64 {
    let mut conn = pool.get().await.unwrap();
    diesel::sql_query(sql)
        .bind::<Text, _>(bind)
        .get_result::<Count>(&mut conn)
        .await
        .map_or(0, |c| c.n)
}

async fn until_count(pool: &db::PgPool, what: &str, sql: &str, bind: &str, at_least: i64) {
    let started = Instant::now();
    while count(pool, sql, bind).await < at_least {
        assert!(started.elapsed() < WAIT, "{what} did not happen in time");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Polls a GET until `check` holds on the body.
    async fn until(&self, path: &str, token: &str, check: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let (status, body) = self.call(reqwest::Method::GET, path, token, None).await;
            assert_eq!(status, 200, "{path}: {body}");
            if check(&body) {
                return body;
            }
            assert!(started.elapsed() < WAIT, "{path} never matched: {body:#}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn open_signals(body: &Value, kind: &str, customer: &str) -> usize {
    body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| {
            s["kind"] == kind && s["stripe_customer_id"] == customer && s["resolved_at"].is_null()
        })
        .count()
}

/// The account's billing health; an account without a score yet is healthy (100).
fn health_score(body: &Value) -> i64 {
    body["billing_health"]["score"].as_i64().unwrap_or(100)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_payment_reaches_the_csm_and_follows_its_customer_across_accounts() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let env = TestEnv::new();
    db::ensure_database(&env.common.database.url).await.unwrap();
    let pool = db::pool(&env.common.database).unwrap();
    let (broker, bus) = observe(&env).await;

    // Ingress first: the fake needs its address to send webhooks.
    let mut ingress = ServiceProcess::spawn(
        &workspace_binary("ingress"),
        "ingress",
        &env,
        &[
            ("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET),
            ("BILLING__INGRESS__DEFAULT_TENANT", TENANT),
        ],
    );
    let now = chrono::Utc::now().timestamp();
    let fake = FakeServer::start(FakeConfig {
        rate_limit: 0,
        now: Some(now),
        realtime_clock: true,
        seed: Some(SeedOptions {
            customers: 30,
            seed: 23,
            now: Some(now),
            ..Default::default()
        }),
        webhooks: WebhookConfig {
            url: Some(ingress.url("/api/integrations/stripe/webhook")),
            secret: WEBHOOK_SECRET.into(),
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .unwrap();
    let truth: Truth = serde_json::from_value(fake.truth().unwrap()).unwrap();
    let stripe = fake.base_url();
    let master = format!(
        "k1:{}",
        base64::engine::general_purpose::STANDARD.encode([5u8; 32])
    );
    let common = [
        ("BILLING_MASTER_KEYS", master.as_str()),
        ("STRIPE_API_BASE", stripe.as_str()),
        ("BILLING__SYNC_WORKER__REQUESTS_PER_SECOND", "1000"),
    ];
    let mut sync = ServiceProcess::spawn(
        &workspace_binary("sync-worker"),
        "sync_worker",
        &env,
        &common,
    );
    let mut matcher = ServiceProcess::spawn(&workspace_binary("matcher"), "matcher", &env, &common);
    let mut risk = ServiceProcess::spawn(
        &workspace_binary("risk-engine"),
        "risk_engine",
        &env,
        &common,
    );
    let mut api_process = ServiceProcess::spawn(
        &workspace_binary("query-api"),
        "query_api",
        &env,
        &[common[0], common[1], ("BILLING_JWT_SECRET", JWT_SECRET)],
    );
    for service in [
        &mut ingress,
        &mut sync,
        &mut matcher,
        &mut risk,
        &mut api_process,
    ] {
        service.wait_for_status("/readyz", 200).await;
    }
    let api = Api {
        base: api_process.url(""),
        http: reqwest::Client::new(),
    };
    let keys = TokenKeys::new(JWT_SECRET.as_bytes()).unwrap();
    let admin = keys
        .mint(TENANT, "admin-e2e", &[Role::Admin], 3600)
        .unwrap();
    let csm = keys.mint(TENANT, CSM, &[Role::Csm], 3600).unwrap();

    // 1. Connect, backfill, accounts, links.
    let (status, connection) = api
        .call(
            reqwest::Method::POST,
            "/api/integrations/stripe/connect",
            &admin,
            Some(json!({"restricted_key": "rk_test_fake"})),
        )
        .await;
    assert_eq!(status, 201, "{connection}");
    let connection_id = connection["id"].as_str().unwrap().to_owned();
    until_count(
        &pool,
        "the backfill",
        "SELECT count(*) AS n FROM billing.sync_runs WHERE connection_id::text = $1 AND kind = 'backfill' AND status = 'succeeded'",
        &connection_id,
        1,
    )
    .await;
    let publisher = Publisher::new(broker.clone());
    for (message_id, account) in e2e::cscx_accounts(&truth, CSM, now * 1000) {
        publisher
            .publish(&Outgoing::protobuf(
                v1::CscxAccountUpserted::EXCHANGE,
                account.routing_key(),
                message_id,
                v1::CscxAccountUpserted::TYPE,
                TENANT,
                account.encode_to_vec(),
            ))
            .await
            .unwrap();
    }
    // The customer whose payment fails: linked by its metadata id, paying, never failed.
    let customer = truth
        .customers
        .iter()
        .find(|c| {
            c.account == truth.platform_account
                && c.has_metadata_account_id
                && c.failed_payment_attempts == 0
                && c.subscriptions
                    .iter()
                    .any(|s| s.status == "active" && s.mrr > 0)
        })
        .expect("the seeded book has a healthy paying customer");
    let subscription = customer
        .subscriptions
        .iter()
        .find(|s| s.status == "active" && s.mrr > 0)
        .unwrap()
        .id
        .clone();
    let (cx, home) = (customer.customer.clone(), customer.company_id.clone());
    let other = truth
        .companies
        .iter()
        .find(|c| c.company_id != home)
        .unwrap()
        .company_id
        .clone();
    until_count(
        &pool,
        "the link of the customer to its account",
        &format!(
            "SELECT count(*) AS n FROM matching.customer_links WHERE stripe_customer_id = $1 \
             AND account_id = '{home}' AND status IN ('linked', 'manual')"
        ),
        &cx,
        1,
    )
    .await;
    let healthy = api
        .until(&format!("/api/stripe/customer/{home}"), &csm, |b| {
            b["stripe_customers"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["stripe_customer_id"] == cx.as_str()))
        })
        .await;
    let score_before = health_score(&healthy);

    // Payment trouble that predates the connection is scored from the backfill alone: a
    // customer with an unpaid invoice after failed attempts has its signal without any event.
    let troubled = truth
        .customers
        .iter()
        .find(|c| {
            c.account == truth.platform_account
                && c.has_metadata_account_id
                && c.company_id != home
                && c.failed_payment_attempts_30d > 0
                && c.invoice_counts.get("open").is_some_and(|n| *n > 0)
        })
        .expect("the seeded book has a customer in dunning");
    api.until(
        &format!("/api/stripe/signals/{}", troubled.company_id),
        &csm,
        |b| open_signals(b, "payment_failed", &troubled.customer) >= 1,
    )
    .await;

    // The CSM asks to be told about payment failures.
    let (status, reply) = api
        .call(
            reqwest::Method::POST,
            "/api/stripe/chat",
            &csm,
            Some(json!({"text": "alert me on payment failures for all accounts"})),
        )
        .await;
    assert!(status == 200 || status == 202, "{status} {reply}");
    until_count(
        &pool,
        "the alert rule",
        "SELECT count(*) AS n FROM risk.alert_rules WHERE csm_user_id = $1",
        CSM,
        1,
    )
    .await;

    // 2. The renewal fails at Stripe.
    let http = reqwest::Client::new();
    let failed: Value = http
        .post(format!("{stripe}_admin/trigger/fail_payment"))
        .json(&json!({"subscription": subscription}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let invoice = failed["invoice"]
        .as_str()
        .expect("a failed invoice")
        .to_owned();
    let raised = bus
        .wait_for(exchanges::RISK, "signal.raised.payment_failed", |s| {
            v1::SignalRaised::decode(s.data.as_slice()).is_ok_and(|m| {
                m.stripe_customer_id == cx && m.cause_key == format!("invoice:{invoice}")
            })
        })
        .await;
    let signal = v1::SignalRaised::decode(raised.data.as_slice()).unwrap();
    assert_eq!(
        signal.account_id, home,
        "the signal lands on the linked account"
    );
    assert_eq!(signal.csm_user_id, CSM);
    // One trace from the webhook that carried the failure to the signal.
    let trace = raised
        .trace_id
        .clone()
        .expect("the signal carries a traceparent");
    let webhooks: Vec<String> = bus
        .all(exchanges::STRIPE_EVENTS, "")
        .into_iter()
        .filter_map(|s| s.trace_id)
        .collect();
    assert!(
        webhooks.contains(&trace),
        "the signal's trace {trace} began at one of ingress' webhooks {webhooks:?}"
    );
    bus.wait_for(exchanges::BILLING, "", |s| {
        s.trace_id.as_deref() == Some(&trace)
    })
    .await;
    // The CSM sees it: signal, health, alert.
    api.until(&format!("/api/stripe/signals/{home}"), &csm, |b| {
        open_signals(b, "payment_failed", &cx) == 1
    })
    .await;
    let hurt = api
        .until(&format!("/api/stripe/customer/{home}"), &csm, |b| {
            health_score(b) < score_before
        })
        .await;
    let alerts = api
        .until("/api/alerts", &csm, |b| {
            b["data"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|a| a["kind"] == "payment_failed" && a["account_id"] == home.as_str())
            })
        })
        .await;
    assert_eq!(
        alerts["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["kind"] == "payment_failed" && a["account_id"] == home.as_str())
            .count(),
        1,
        "one alert per failure, whatever was redelivered"
    );

    // 3. Finance moves the customer to another account in Stripe.
    let response = http
        .post(format!("{stripe}v1/customers/{cx}"))
        .bearer_auth("sk_test_fake")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("metadata[cscx_account_id]={other}"))
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{:?}",
        response.text().await
    );
    let relinked = bus
        .wait_for(exchanges::MATCHING, "link.changed", |s| {
            v1::CustomerLinkChanged::decode(s.data.as_slice())
                .is_ok_and(|m| m.stripe_customer_id == cx && m.account_id_after == other)
        })
        .await;
    let trace = relinked
        .trace_id
        .clone()
        .expect("the link change carries a traceparent");
    assert!(
        bus.all(exchanges::STRIPE_EVENTS, "customer.updated")
            .iter()
            .any(|s| s.trace_id.as_deref() == Some(&trace)),
        "the relink's trace began at ingress' customer.updated webhook"
    );
    let moved = bus
        .wait_for(exchanges::RISK, "health.changed", |s| {
            s.trace_id.as_deref() == Some(&trace)
                && v1::HealthChanged::decode(s.data.as_slice()).is_ok_and(|m| m.account_id == other)
        })
        .await;
    let moved = v1::HealthChanged::decode(moved.data.as_slice()).unwrap();
    assert!(moved.score < moved.score_before, "{moved:?}");
    api.until(&format!("/api/stripe/signals/{other}"), &csm, |b| {
        open_signals(b, "payment_failed", &cx) == 1
    })
    .await;
    api.until(&format!("/api/stripe/signals/{home}"), &csm, |b| {
        open_signals(b, "payment_failed", &cx) == 0
    })
    .await;
    api.until(&format!("/api/stripe/customer/{home}"), &csm, |b| {
        health_score(b) > health_score(&hurt)
    })
    .await;

    // 4. The invoice is paid: the signal resolves on the account the customer now belongs to.
    let paid = http
        .post(format!("{stripe}_admin/trigger/pay_invoice"))
        .json(&json!({"invoice": invoice}))
        .send()
        .await
        .unwrap();
    assert!(paid.status().is_success());
    let resolved = bus
        .wait_for(exchanges::RISK, "signal.resolved.payment_failed", |s| {
            v1::SignalResolved::decode(s.data.as_slice()).is_ok_and(|m| m.stripe_customer_id == cx)
        })
        .await;
    let resolved = v1::SignalResolved::decode(resolved.data.as_slice()).unwrap();
    assert_eq!(resolved.account_id, other);
    api.until(&format!("/api/stripe/signals/{other}"), &csm, |b| {
        open_signals(b, "payment_failed", &cx) == 0
    })
    .await;
    assert_eq!(
        bus.all(exchanges::RISK, "signal.raised.payment_failed")
            .iter()
            .filter(|s| v1::SignalRaised::decode(s.data.as_slice())
                .is_ok_and(|m| m.cause_key == format!("invoice:{invoice}") && !m.escalated))
            .count(),
        1,
        "the failure was raised once"
    );

    for service in [ingress, sync, matcher, risk, api_process] {
        assert!(
            service.terminate().success(),
            "a service did not stop cleanly"
        );
    }
    drop(fake);
    env.cleanup(&[&broker]).await;
}
