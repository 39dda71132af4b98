//! The sync-worker binary end to end over the real broker: a backfill job on `sync.jobs`
//! fills `billing` from the Stripe fake, a failed payment's events on `stripe.events` are
//! applied, and the facts come out on the `billing` exchange.

use std::time::Duration;

use base64::Engine as _;
use contracts::{exchanges, v1, Contract as _};
use diesel_async::RunQueryDsl as _;
use lapin::options::BasicGetOptions;
use platform::amqp::{Broker, Outgoing, Publisher, QueueSpec};
use platform::crypto::Sealer;
use platform::db;
use platform::testing::{ServiceProcess, TestEnv};
use prost::Message as _;
use serde_json::{json, Value};
use stripe_fake::{FakeConfig, FakeServer, SeedOptions, Truth};
use uuid::Uuid;

const TENANT: &str = "tenant-svc";
const OBSERVER: &str = "test.billing-facts";

#[derive(diesel::QueryableByName)]
struct Text {
    #[diesel(sql_type = diesel::sql_types::Text)]
    v: String,
}

async fn scalar(pool: &db::PgPool, sql: &str) -> Option<String> {
    let mut conn = pool.get().await.ok()?;
    diesel::sql_query(sql)
        .get_result::<Text>(&mut conn)
        .await
        .ok()
        .map(|t| t.v)
}

/// Polls until `sql` answers `want`; on timeout stops the worker and shows its log.
async fn wait_for(pool: &db::PgPool, sql: &str, want: &str, worker: &mut Option<ServiceProcess>) {
    for _ in 0..300 {
        if scalar(pool, sql).await.as_deref() == Some(want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = worker
        .take()
        .map(|w| w.terminate_with_stderr().1)
        .unwrap_or_default();
    panic!(
        "never {want:?}: {sql} (last {:?})\nworker log:\n{log}",
        scalar(pool, sql).await
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn backfill_job_then_live_events_then_facts() {
    let env = TestEnv::new();
    let url = env.common.database.url.clone();
    db::ensure_database(&url).await.unwrap();
    db::migrate(&url, "integration", query_api::MIGRATIONS)
        .await
        .unwrap();
    let pool = db::pool(&env.common.database).unwrap();
    let now = chrono::Utc::now().timestamp();
    let fake = FakeServer::start(FakeConfig {
        rate_limit: 0,
        now: Some(now),
        seed: Some(SeedOptions {
            customers: 30,
            seed: 4,
            now: Some(now),
            ..Default::default()
        }),
        ..Default::default()
    })
    .await
    .unwrap();
    let truth: Truth = serde_json::from_value(fake.truth().unwrap()).unwrap();

    let master = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
    let sealer = Sealer::new(&[("k1".into(), master.clone())]).unwrap();
    let connection = {
        let mut conn = pool.get().await.unwrap();
        query_api::testing::store_restricted_key_connection(
            &mut conn,
            &sealer,
            TENANT,
            &truth.platform_account,
        )
        .await
        .unwrap()
    };

    let topology = sync_worker::spec()
        .topology
        .exchange(exchanges::SYNC_JOBS)
        .queue(QueueSpec::new(OBSERVER).bind(exchanges::BILLING, "#"));
    let broker = Broker::new(env.common.amqp.clone(), topology);
    broker.connection().await.unwrap();
    let publisher = Publisher::new(broker.clone());

    let keys = format!("k1:{master}");
    let mut worker = Some(ServiceProcess::spawn(
        env!("CARGO_BIN_EXE_sync-worker"),
        "sync_worker",
        &env,
        &[
            ("BILLING_MASTER_KEYS", keys.as_str()),
            ("STRIPE_API_BASE", fake.base_url().as_str()),
            ("BILLING__SYNC_WORKER__REQUESTS_PER_SECOND", "1000"),
        ],
    ));
    worker
        .as_mut()
        .unwrap()
        .wait_for_status("/readyz", 200)
        .await;

    // 1. Backfill through the job queue.
    let job = v1::SyncJob {
        job_id: Uuid::new_v4().to_string(),
        connection_id: connection.to_string(),
        kind: v1::sync_job::Kind::Backfill as i32,
        object_id: String::new(),
        requested_at_ms: 0,
    };
    publisher
        .publish(&Outgoing::protobuf(
            v1::SyncJob::EXCHANGE,
            job.routing_key(),
            job.job_id.clone(),
            v1::SyncJob::TYPE,
            TENANT,
            job.encode_to_vec(),
        ))
        .await
        .unwrap();
    wait_for(
        &pool,
        &format!("SELECT status AS v FROM billing.sync_runs WHERE connection_id = '{connection}'"),
        "succeeded",
        &mut worker,
    )
    .await;
    let customers = truth
        .customers
        .iter()
        .filter(|c| c.account == truth.platform_account)
        .count();
    wait_for(
        &pool,
        "SELECT count(*)::text AS v FROM billing.stripe_customers",
        &customers.to_string(),
        &mut worker,
    )
    .await;

    // 2. A payment fails at Stripe; ingress would publish its events like this.
    let http = reqwest::Client::new();
    let admin = |path: &str, body: Value| {
        let http = http.clone();
        let url = format!("{}_admin/{path}", fake.base_url());
        async move {
            let resp = http.post(url).json(&body).send().await.unwrap();
            assert!(resp.status().is_success());
            resp.json::<Value>().await.unwrap()
        }
    };
    admin("trigger/advance_time", json!({"seconds": 30})).await;
    let victim = truth
        .customers
        .iter()
        .find(|c| c.subscriptions.iter().any(|s| s.status == "active"))
        .unwrap();
    let failed = admin("trigger/fail_payment", json!({"customer": victim.customer})).await;
    let invoice = failed["invoice"].as_str().unwrap().to_owned();
    let events: Value = http
        .get(format!("{}v1/events?limit=100", fake.base_url()))
        .bearer_auth("sk_test_fake")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for e in events["data"].as_array().unwrap() {
        let received = v1::StripeEventReceived {
            event_id: e["id"].as_str().unwrap().into(),
            event_type: e["type"].as_str().unwrap().into(),
            account: String::new(),
            created: e["created"].as_i64().unwrap(),
            livemode: false,
            api_version: "2025-03-31.basil".into(),
            payload: serde_json::to_vec(e).unwrap(),
            received_at_ms: 0,
            endpoint: "platform".into(),
        };
        publisher
            .publish(&Outgoing::protobuf(
                v1::StripeEventReceived::EXCHANGE,
                received.routing_key(),
                received.event_id.clone(),
                v1::StripeEventReceived::TYPE,
                TENANT,
                received.encode_to_vec(),
            ))
            .await
            .unwrap();
    }
    wait_for(
        &pool,
        &format!("SELECT attempt_count::text AS v FROM billing.stripe_invoices WHERE stripe_invoice_id = '{invoice}'"),
        "1",
        &mut worker,
    )
    .await;

    // 3. The failure is a fact on the `billing` exchange.
    let conn = broker.connection().await.unwrap();
    let channel = conn.create_channel().await.unwrap();
    let mut routing_keys = Vec::new();
    for _ in 0..100 {
        while let Some(got) = channel
            .basic_get(
                broker.name(OBSERVER).into(),
                BasicGetOptions { no_ack: true },
            )
            .await
            .unwrap()
        {
            routing_keys.push(got.delivery.routing_key.to_string());
        }
        if routing_keys.iter().any(|k| k == "payment.failed") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        routing_keys.iter().any(|k| k == "payment.failed"),
        "{routing_keys:?}"
    );
    assert!(
        routing_keys.iter().any(|k| k == "invoice.updated"),
        "{routing_keys:?}"
    );

    let status = worker.take().unwrap().terminate();
    assert!(status.success(), "{status}");
    fake.stop().await;
    env.cleanup(&[&*broker]).await;
}
