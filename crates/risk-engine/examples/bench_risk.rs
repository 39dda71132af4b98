//! `make bench-risk`: the whole pipeline under load, every part its own release process.
//!
//! The Stripe fake (seeded book) sends signed webhooks to ingress; ingress stores and relays
//! them to `stripe.events`; the sync worker applies them to `billing` and publishes facts; the
//! risk engine turns them into signals on `risk`. The bench backfills first, then fails
//! payments through the fake's trigger at a steady rate (each failure is several webhooks:
//! `invoice.payment_failed`, `charge.failed`, `invoice.updated`, …) and consumes
//! `signal.raised.payment_failed` from the `risk` exchange.
//!
//! Latency of a failure = the signal's arrival on the observer queue − the moment ingress
//! accepted that invoice's `invoice.payment_failed` webhook (`ingress.events.received_at`),
//! so it covers ingress' outbox, two broker hops, the sync worker's transaction, its outbox,
//! the risk engine's transaction and its outbox.
//!
//! Prints webhooks/s, facts/s, the latency distribution and each service's peak RSS, then
//! `RESULT e2e_signal_p99_ms <n>` (target ≤ 500 at 500 webhooks/s; PRD: < 3 s, detection
//! < 5 min). Environment: `BENCH_CUSTOMERS` (default 2000), `BENCH_FAILURES_PER_S` (default
//! 125), `BENCH_SECONDS` (default 20).

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use contracts::{exchanges, v1, Contract as _};
use diesel_async::RunQueryDsl as _;
use futures_util::StreamExt as _;
use platform::amqp::{Broker, Outgoing, Publisher, QueueSpec};
use platform::crypto::Sealer;
use platform::db;
use platform::testing::{free_port, ServiceProcess, TestEnv};
use prost::Message as _;

const TENANT: &str = "bench";
const OBSERVER: &str = "bench.signals";
const SECRET: &str = "whsec_bench_only";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn release_bin(name: &str) -> String {
    let dir = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| {
        format!(
            "{}/.cache/billing-target",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    let path = format!("{dir}/release/{name}");
    assert!(
        std::path::Path::new(&path).exists(),
        "{path} missing: run `make bench-risk`"
    );
    path
}

fn peak_rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

struct Fake(Child);

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[derive(diesel::QueryableByName)]
struct Received {
    #[diesel(sql_type = diesel::sql_types::Text)]
    invoice: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    received_ms: i64,
    /// Ingress' relay confirmed the event on `stripe.events`.
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    published_ms: Option<i64>,
    /// The sync worker's transaction for it began (its inbox row's `now()`).
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    applying_ms: Option<i64>,
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

async fn count(pool: &db::PgPool, sql: &str) -> i64 {
    let mut conn = pool.get().await.unwrap();
    diesel::sql_query(sql)
        .get_result::<Count>(&mut conn)
        .await
        .map_or(0, |c| c.n)
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let customers = env_or("BENCH_CUSTOMERS", 2_000);
    let rate = env_or("BENCH_FAILURES_PER_S", 125);
    let seconds = env_or("BENCH_SECONDS", 20);
    let env = TestEnv::new();
    let url = env.common.database.url.clone();
    db::ensure_database(&url).await.unwrap();
    db::migrate(&url, "integration", query_api::MIGRATIONS)
        .await
        .unwrap();
    let pool = db::pool(&env.common.database).unwrap();

    // Ingress first (the fake needs its address), then the fake, seeded, sending webhooks to it.
    let ingress_env = [
        ("STRIPE_WEBHOOK_SECRET", SECRET),
        ("BILLING__INGRESS__DEFAULT_TENANT", TENANT),
        // As measured so far: the test harness's info level would add logging to the load.
        ("BILLING__TELEMETRY__LOG_FILTER", "warn"),
    ];
    let mut ingress = ServiceProcess::spawn(&release_bin("ingress"), "ingress", &env, &ingress_env);
    let ingress_port = ingress.port;
    let fake_port = free_port();
    let now = chrono::Utc::now().timestamp();
    let fake = Fake(
        Command::new(release_bin("stripe-fake"))
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{fake_port}"),
                "--rate-limit",
                "0",
            ])
            .args([
                "--seed-customers",
                &customers.to_string(),
                "--seed",
                "11",
                "--now",
                &now.to_string(),
            ])
            .args([
                "--webhook-url",
                &format!("http://127.0.0.1:{ingress_port}/api/integrations/stripe/webhook"),
            ])
            .args(["--webhook-secret", SECRET])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("stripe-fake starts"),
    );
    let base = format!("http://127.0.0.1:{fake_port}/");
    let http = reqwest::Client::new();
    let truth: serde_json::Value = loop {
        if let Ok(resp) = http.get(format!("{base}_admin/truth")).send().await {
            if resp.status().is_success() {
                break resp.json().await.unwrap();
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // A connection for the platform account, sealed as query-api would.
    let master = base64::engine::general_purpose::STANDARD.encode([42u8; 32]);
    let sealer = Sealer::new(&[("k1".into(), master.clone())]).unwrap();
    let connection = {
        let mut conn = pool.get().await.unwrap();
        query_api::testing::store_restricted_key_connection(
            &mut conn,
            &sealer,
            TENANT,
            truth["platform_account"].as_str().unwrap(),
        )
        .await
        .unwrap()
    };

    // The services.
    let keys = format!("k1:{master}");
    let common = [
        ("BILLING_MASTER_KEYS", keys.as_str()),
        ("STRIPE_API_BASE", base.as_str()),
        ("BILLING__SYNC_WORKER__REQUESTS_PER_SECOND", "1000"),
        ("BILLING__TELEMETRY__LOG_FILTER", "warn"),
    ];
    let mut sync = ServiceProcess::spawn(&release_bin("sync-worker"), "sync_worker", &env, &common);
    let mut risk = ServiceProcess::spawn(&release_bin("risk-engine"), "risk_engine", &env, &common);
    for service in [&mut ingress, &mut sync, &mut risk] {
        service.wait_for_status("/readyz", 200).await;
    }

    // Observe the signals before anything happens.
    let topology = risk_engine::spec()
        .topology
        .exchange(exchanges::SYNC_JOBS)
        .queue(QueueSpec::new(OBSERVER).bind(exchanges::RISK, "signal.raised.payment_failed"));
    let broker = Broker::new(env.common.amqp.clone(), topology);
    let conn = broker.connection().await.unwrap();
    let channel = conn.create_channel().await.unwrap();
    let mut consumer = channel
        .basic_consume(
            broker.name(OBSERVER).into(),
            "bench".into(),
            lapin::options::BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            lapin::types::FieldTable::default(),
        )
        .await
        .unwrap();
    let arrivals: Arc<Mutex<HashMap<String, i64>>> = Arc::default();
    let seen = arrivals.clone();
    tokio::spawn(async move {
        while let Some(Ok(delivery)) = consumer.next().await {
            let at = chrono::Utc::now().timestamp_millis();
            if let Ok(signal) = v1::SignalRaised::decode(delivery.data.as_slice()) {
                if !signal.escalated {
                    let invoice = signal.cause_key.trim_start_matches("invoice:").to_owned();
                    seen.lock().unwrap().entry(invoice).or_insert(at);
                }
            }
        }
    });

    // Backfill (signals from the backfilled truth are not what we measure).
    let job = v1::SyncJob {
        job_id: uuid::Uuid::new_v4().to_string(),
        connection_id: connection.to_string(),
        kind: v1::sync_job::Kind::Backfill as i32,
        object_id: String::new(),
        requested_at_ms: 0,
    };
    Publisher::new(broker.clone())
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
    let started = Instant::now();
    while count(&pool, &format!("SELECT count(*) AS n FROM billing.sync_runs WHERE connection_id = '{connection}' AND status = 'succeeded'")).await == 0 {
        assert!(started.elapsed() < Duration::from_secs(600), "backfill did not finish");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    println!(
        "backfill of {customers} customers: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // Let the backfill's facts drain through the risk engine.
    let mut last = -1;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let n = count(&pool, "SELECT count(*) AS n FROM risk.inbox").await;
        if n == last {
            break;
        }
        last = n;
    }
    arrivals.lock().unwrap().clear();

    // Load: failures at a steady rate, on distinct active subscriptions.
    let targets: Vec<String> = truth["customers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["account"] == truth["platform_account"])
        .flat_map(|c| c["subscriptions"].as_array().cloned().unwrap_or_default())
        .filter(|s| s["status"] == "active")
        .filter_map(|s| s["id"].as_str().map(str::to_owned))
        .collect();
    let total = (rate * seconds) as usize;
    let webhooks_before = count(&pool, "SELECT count(*) AS n FROM ingress.events").await;
    let facts_before = count(&pool, "SELECT count(*) AS n FROM risk.inbox").await;
    let load_started = Instant::now();
    let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    let mut triggers = Vec::new();
    for i in 0..total {
        interval.tick().await;
        let sub = targets[i % targets.len()].clone();
        let http = http.clone();
        let url = format!("{base}_admin/trigger/fail_payment");
        triggers.push(tokio::spawn(async move {
            let _ = http
                .post(url)
                .json(&serde_json::json!({"subscription": sub}))
                .send()
                .await;
        }));
    }
    for t in triggers {
        let _ = t.await;
    }
    let load_secs = load_started.elapsed().as_secs_f64();
    // Drain: until the ingress outbox is empty and the risk engine stops moving.
    let mut last = -1;
    for _ in 0..120 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let n = count(&pool, "SELECT count(*) AS n FROM risk.inbox").await;
        let unpublished = count(
            &pool,
            "SELECT count(*) AS n FROM ingress.events WHERE published_at IS NULL",
        )
        .await;
        if n == last && unpublished == 0 {
            break;
        }
        last = n;
    }
    let webhooks = count(&pool, "SELECT count(*) AS n FROM ingress.events").await - webhooks_before;
    let facts = count(&pool, "SELECT count(*) AS n FROM risk.inbox").await - facts_before;

    let received: Vec<Received> = {
        let mut conn = pool.get().await.unwrap();
        diesel::sql_query(
            "SELECT DISTINCT ON (e.payload::jsonb #>> '{data,object,id}') \
                    e.payload::jsonb #>> '{data,object,id}' AS invoice, \
                    (extract(epoch FROM e.received_at) * 1000)::bigint AS received_ms, \
                    (extract(epoch FROM e.published_at) * 1000)::bigint AS published_ms, \
                    (extract(epoch FROM i.processed_at) * 1000)::bigint AS applying_ms \
             FROM ingress.events e \
             LEFT JOIN billing.inbox i ON i.consumer = 'sync-worker.stripe-events' AND i.message_id = e.event_id \
             WHERE e.event_type = 'invoice.payment_failed' \
             ORDER BY e.payload::jsonb #>> '{data,object,id}', e.received_at",
        )
        .load(&mut conn)
        .await
        .unwrap()
    };
    let arrivals = arrivals.lock().unwrap().clone();
    let mut latencies: Vec<i64> = received
        .iter()
        .filter_map(|r| arrivals.get(&r.invoice).map(|at| at - r.received_ms))
        .collect();
    latencies.sort_unstable();
    let signals = latencies.len();
    // Where the time goes, stage by stage, for the same webhooks.
    let stage = |f: &dyn Fn(&Received) -> Option<i64>| {
        let mut v: Vec<i64> = received
            .iter()
            .filter(|r| arrivals.contains_key(&r.invoice))
            .filter_map(f)
            .collect();
        v.sort_unstable();
        v
    };
    let stages = [
        (
            "ingress outbox (accepted → published)",
            stage(&|r| Some(r.published_ms? - r.received_ms)),
        ),
        (
            "stripe.events queue (published → sync worker's transaction begins)",
            stage(&|r| Some(r.applying_ms? - r.published_ms?)),
        ),
        (
            "sync apply, billing outbox, risk engine (→ signal)",
            stage(&|r| Some(arrivals[&r.invoice] - r.applying_ms?)),
        ),
    ];

    println!(
        "load: {total} failed payments in {load_secs:.1} s → {webhooks} webhooks ({:.0}/s), {facts} facts into the risk engine ({:.0}/s)",
        webhooks as f64 / load_secs,
        facts as f64 / load_secs
    );
    println!(
        "signals: {signals} new payment_failed signals matched to their webhook (of {} failing invoices)",
        received.len()
    );
    println!(
        "webhook accepted → signal on the risk exchange: p50 {} ms, p90 {} ms, p99 {} ms, max {} ms",
        percentile(&latencies, 50.0),
        percentile(&latencies, 90.0),
        percentile(&latencies, 99.0),
        latencies.last().copied().unwrap_or(0)
    );
    for (name, v) in &stages {
        println!(
            "  {name}: p50 {} ms, p99 {} ms",
            percentile(v, 50.0),
            percentile(v, 99.0)
        );
    }
    // The sync worker's own account of what it did with every event.
    if let Ok(resp) = http.get(sync.url("/metrics")).send().await {
        let text = resp.text().await.unwrap_or_default();
        for line in text.lines().filter(|l| {
            l.starts_with("sync_events_total") || l.starts_with("sync_event_apply_seconds{quantile")
        }) {
            println!("  {line}");
        }
    }
    let rss = [
        ("ingress", ingress.pid()),
        ("sync_worker", sync.pid()),
        ("risk_engine", risk.pid()),
    ]
    .map(|(name, pid)| (name, peak_rss_mb(pid)));
    for (name, mb) in &rss {
        println!("peak RSS {name}: {mb:.0} MB");
    }
    drop(fake);
    for service in [ingress, sync, risk] {
        let _ = service.terminate();
    }
    env.cleanup(&[&*broker]).await;
    println!(
        "RESULT e2e_webhooks_per_s {:.0}",
        webhooks as f64 / load_secs
    );
    println!("RESULT risk_facts_per_s {:.0}", facts as f64 / load_secs);
    for (name, mb) in &rss {
        println!("RESULT {name}_rss_mb {mb:.0}");
    }
    println!("RESULT e2e_signal_p50_ms {}", percentile(&latencies, 50.0));
    println!("RESULT e2e_signal_p99_ms {}", percentile(&latencies, 99.0));
}
