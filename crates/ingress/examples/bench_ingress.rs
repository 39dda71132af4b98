//! `make bench-ingress`: a load generator that signs realistic Stripe events with unique ids
//! and posts them to a separately running release `ingress` process (real Postgres, real
//! RabbitMQ on this machine). Measures sustained throughput, ack latency at a fixed rate, the
//! outbox lag (stored → delivered to a consumer of `stripe.events`) and ingress's peak RSS.
//!
//! Prints `RESULT ingress_events_per_s <n>`, `RESULT ingress_ack_p99_ms <n>`,
//! `RESULT outbox_lag_p99_ms <n>` (and `RESULT ingress_rss_mb <n>`).

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use contracts::v1::StripeEventReceived;
use futures_util::StreamExt as _;
use hdrhistogram::Histogram;
use lapin::options::{BasicAckOptions, BasicConsumeOptions};
use platform::{
    amqp::{Broker, QueueSpec, Topology},
    testing::{free_port, TestEnv},
};
use prost::Message as _;

const SECRET: &str = "whsec_bench_ingress";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn event_body(seq: u64) -> Vec<u8> {
    serde_json::json!({
        "id": format!("evt_bench_{seq:010}"), "object": "event", "api_version": "2025-03-31.basil",
        "created": chrono::Utc::now().timestamp(), "livemode": false, "pending_webhooks": 1,
        "request": { "id": null, "idempotency_key": null }, "type": "invoice.payment_failed",
        "data": { "object": {
            "id": format!("in_bench_{seq}"), "object": "invoice", "customer": format!("cus_bench_{}", seq % 5000),
            "amount_due": 12900, "amount_paid": 0, "amount_remaining": 12900, "attempt_count": 2, "attempted": true,
            "currency": "usd", "status": "open", "next_payment_attempt": chrono::Utc::now().timestamp() + 86400,
            "parent": { "type": "subscription_details", "subscription_details": { "subscription": format!("sub_bench_{seq}") } },
            "lines": { "object": "list", "data": [ { "id": format!("il_bench_{seq}"), "object": "line_item", "amount": 12900, "currency": "usd", "quantity": 3 } ], "has_more": false }
        } }
    })
    .to_string()
    .into_bytes()
}

async fn post(client: &reqwest::Client, url: &str, seq: u64) -> anyhow::Result<Duration> {
    let body = event_body(seq);
    let sig =
        domain::webhook_signature::header_value(SECRET, chrono::Utc::now().timestamp(), &body);
    let started = Instant::now();
    let resp = client
        .post(url)
        .header("content-type", "application/json")
        .header("stripe-signature", sig)
        .body(body)
        .send()
        .await?;
    anyhow::ensure!(
        resp.status().is_success(),
        "ingress answered {}",
        resp.status()
    );
    Ok(started.elapsed())
}

fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let total = env_or("BENCH_EVENTS", 40_000);
    let concurrency = env_or("BENCH_CONCURRENCY", 64) as usize;
    let rate = env_or("BENCH_RATE", 1_000);
    let rate_seconds = env_or("BENCH_RATE_SECONDS", 10);

    let env = TestEnv::new();
    // An observer queue on stripe.events measures the outbox lag.
    let observer = Broker::new(
        env.common.amqp.clone(),
        Topology::new()
            .queue(QueueSpec::new("bench-observer").bind(contracts::exchanges::STRIPE_EVENTS, "#")),
    );
    observer.connection().await?;

    let binary = std::env::current_exe()?
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("ingress"))
        .unwrap();
    anyhow::ensure!(
        binary.exists(),
        "build the release binaries first: {}",
        binary.display()
    );
    let port = free_port();
    let mut child = std::process::Command::new(&binary)
        .arg("serve")
        .env("DATABASE_URL", &env.common.database.url)
        .env("AMQP_URL", &env.common.amqp.url)
        .env("BILLING__AMQP__NAMESPACE", &env.common.amqp.namespace)
        .env(
            "BILLING__AMQP__DELIVERY_LIMIT",
            env.common.amqp.delivery_limit.to_string(),
        )
        .env("BILLING__INGRESS__LISTEN", format!("127.0.0.1:{port}"))
        .env("BILLING__DATABASE__POOL_SIZE", "8")
        .env("BILLING__TELEMETRY__LOG_FILTER", "warn")
        .env("STRIPE_WEBHOOK_SECRET", SECRET)
        .spawn()?;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let mut ready = false;
    for _ in 0..300 {
        if client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::ensure!(ready, "ingress never became ready");
    let url = format!("{base}/api/integrations/stripe/webhook");

    // Outbox lag: consumer-side arrival time minus ingress's received_at.
    let lag = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1,
        600_000_000,
        3,
    )?));
    let conn = observer.connection().await?;
    let channel = conn.create_channel().await?;
    channel.basic_qos(1000, Default::default()).await?;
    let mut consumer = channel
        .basic_consume(
            observer.name("bench-observer").into(),
            "bench".into(),
            BasicConsumeOptions::default(),
            Default::default(),
        )
        .await?;
    let lag_in = lag.clone();
    let observer_task = tokio::spawn(async move {
        while let Some(Ok(delivery)) = consumer.next().await {
            if let Ok(event) = StripeEventReceived::decode(&*delivery.data) {
                let now_ms = chrono::Utc::now().timestamp_millis();
                let micros = ((now_ms - event.received_at_ms).max(0) as u64) * 1000;
                lag_in.lock().unwrap().record(micros.max(1)).ok();
            }
            let _ = delivery.ack(BasicAckOptions::default()).await;
        }
    });

    // 1. Sustained throughput with `concurrency` connections.
    let started = Instant::now();
    let results: Vec<anyhow::Result<Duration>> = futures_util::stream::iter(0..total)
        .map(|seq| {
            let (client, url) = (client.clone(), url.clone());
            async move { post(&client, &url, seq).await }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let failures = results.iter().filter(|r| r.is_err()).count();
    anyhow::ensure!(failures == 0, "{failures} requests failed");
    let throughput = total as f64 / elapsed.as_secs_f64();
    println!("throughput: {total} verified events in {:.2} s with {concurrency} connections = {throughput:.0}/s", elapsed.as_secs_f64());

    // Let the relay catch up before measuring latency at a steady rate.
    let deadline = Instant::now() + Duration::from_secs(60);
    while lag.lock().unwrap().len() < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    lag.lock().unwrap().reset();

    // 2. Ack latency and outbox lag at a fixed rate.
    let acks = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1, 60_000_000, 3,
    )?));
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = tokio::task::JoinSet::new();
    let n = rate * rate_seconds;
    for i in 0..n {
        ticker.tick().await;
        let (client, url, acks) = (client.clone(), url.clone(), acks.clone());
        tasks.spawn(async move {
            let took = post(&client, &url, total + i).await?;
            acks.lock().unwrap().record(took.as_micros() as u64).ok();
            anyhow::Ok(())
        });
        while let Some(done) = tasks.try_join_next() {
            done??;
        }
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while lag.lock().unwrap().len() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rss = rss_mb(child.id());
    let acks = acks.lock().unwrap().clone();
    let lag = lag.lock().unwrap().clone();
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "at {rate}/s for {rate_seconds} s: ack p50={:.2} ms p99={:.2} ms p999={:.2} ms; outbox lag (n={}) p50={:.1} ms p99={:.1} ms; ingress peak RSS {rss:.1} MB",
        ms(&acks, 0.5),
        ms(&acks, 0.99),
        ms(&acks, 0.999),
        lag.len(),
        ms(&lag, 0.5),
        ms(&lag, 0.99)
    );

    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait()?;
    observer_task.abort();
    env.cleanup(&[&observer]).await;
    anyhow::ensure!(status.success(), "ingress exited with {status}");

    println!("RESULT ingress_events_per_s {throughput:.0}");
    println!("RESULT ingress_ack_p99_ms {:.2}", ms(&acks, 0.99));
    println!("RESULT outbox_lag_p99_ms {:.1}", ms(&lag, 0.99));
    println!("RESULT ingress_rss_mb {rss:.1}");
    Ok(())
}
