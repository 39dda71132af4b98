//! `make bench-sync`: a cold backfill against a seeded Stripe fake rate-limited at 100 req/s,
//! for 1,000 and 10,000 customers.
//!
//! The fake runs as its own release process (`stripe-fake serve`), so it does not share this
//! process' runtime or CPU accounting; the backfill runs here, as the worker runs it, with
//! the client's token bucket at 100 req/s (Stripe's live limit) so our pacing, not the fake's
//! 429s, sets the speed. Every run gets a fresh `billing_bench_<id>` database, dropped after.
//!
//! Prints requests, objects/s and how close the run came to the rate limit, then
//! `RESULT backfill_1k_s <n>`, `RESULT backfill_10k_s <n>` and `RESULT backfill_rss_mb <n>`
//! (this process' peak RSS: the worker side of the backfill).
//!
//! Environment: `BENCH_SIZES` (default `1000,10000`), `BENCH_SEED` (default 7),
//! `BENCH_RATE` (default 100, applied to both the fake and the client), `BENCH_LATENCY_MS`
//! (default 0: latency the fake adds to every answer, to see how Stripe's own page latency
//! bounds a list's serial cursor chain).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use platform::{db, testing};
use secrecy::SecretString;
use stripe_api::{ApiConfig, StripeApi};
use sync_worker::{backfill, rows::Scope};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn status_kb(pid: &str, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse().ok())
        .unwrap_or(0.0)
}

/// CPU ticks (user + system) a process has used so far.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    stat.rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .skip(11)
                .take(2)
                .filter_map(|f| f.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0)
}

/// The fake as its own process, stopped when dropped.
struct Fake {
    child: Child,
    base_url: String,
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_fake(
    binary: &std::path::Path,
    customers: u64,
    seed: u64,
    rate: u64,
    latency_ms: u64,
) -> Fake {
    let port = testing::free_port();
    let now = chrono::Utc::now().timestamp();
    let child = Command::new(binary)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--rate-limit", &rate.to_string()])
        .args(["--latency-ms", &latency_ms.to_string()])
        .args(["--seed-customers", &customers.to_string()])
        .args(["--seed", &seed.to_string(), "--now", &now.to_string()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("stripe-fake starts");
    Fake {
        child,
        base_url: format!("http://127.0.0.1:{port}/"),
    }
}

/// Waits until the fake answers, then until it has finished pre-serialising its objects
/// (its CPU time stops growing), so the backfill does not compete with the warm-up.
async fn wait_ready(fake: &mut Fake) -> serde_json::Value {
    let client = reqwest::Client::new();
    let url = format!("{}_admin/summary", fake.base_url);
    let summary = loop {
        if let Ok(Some(exit)) = fake.child.try_wait() {
            panic!("stripe-fake exited early: {exit}");
        }
        if let Ok(resp) = client.get(&url).send().await {
            if resp.status().is_success() {
                break resp
                    .json::<serde_json::Value>()
                    .await
                    .expect("summary JSON");
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let pid = fake.child.id();
    let mut last = cpu_ticks(pid);
    for _ in 0..600 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = cpu_ticks(pid);
        if now - last <= 2 {
            break;
        }
        last = now;
    }
    summary
}

/// When each list was stored, from its cursor row (seconds after the run started).
async fn print_lists(pool: &db::PgPool, run_id: uuid::Uuid) {
    use diesel::{ExpressionMethods as _, QueryDsl as _};
    use diesel_async::RunQueryDsl as _;
    use sync_worker::{backfill::sync_run_cursors as c, schema::sync_runs as r};
    let mut conn = pool.get().await.expect("connection");
    let started: chrono::DateTime<chrono::Utc> = r::table
        .find(run_id)
        .select(r::started_at)
        .first(&mut conn)
        .await
        .expect("run");
    let mut lists: Vec<(String, i64, chrono::DateTime<chrono::Utc>)> = c::table
        .filter(c::run_id.eq(run_id))
        .select((c::list, c::pages, c::updated_at))
        .load(&mut conn)
        .await
        .expect("cursors");
    lists.sort_by_key(|(_, _, at)| *at);
    println!(
        "INFO lists stored at (s after start, pages): {}",
        lists
            .iter()
            .map(|(list, pages, at)| format!(
                "{list}={:.2} ({pages})",
                (*at - started).num_milliseconds() as f64 / 1000.0
            ))
            .collect::<Vec<_>>()
            .join(" ")
    );
}

struct Outcome {
    seconds: f64,
    requests: u64,
    throttled: u64,
    retries: u64,
    objects: i64,
}

async fn run_once(
    binary: &std::path::Path,
    customers: u64,
    seed: u64,
    rate: u64,
    latency_ms: u64,
) -> Outcome {
    let mut fake = start_fake(binary, customers, seed, rate, latency_ms).await;
    let summary = wait_ready(&mut fake).await;
    let book = summary["accounts"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|b| b["account"] == summary["platform_account"])
        })
        .cloned()
        .unwrap_or_default();
    let lists = [
        "products",
        "prices",
        "coupons",
        "customers",
        "subscriptions",
        "invoices",
        "charges",
    ];
    let counts: Vec<u64> = lists
        .iter()
        .map(|l| book[l].as_u64().unwrap_or(0))
        .collect();
    let objects_expected: u64 = counts.iter().sum();
    let pages_min: u64 = counts.iter().map(|n| n.div_ceil(100).max(1)).sum();
    println!(
        "INFO fake customers={customers} seed={seed} objects={objects_expected} ({}) minimum_requests={pages_min}",
        lists
            .iter()
            .zip(&counts)
            .map(|(l, n)| format!("{l}={n}"))
            .collect::<Vec<_>>()
            .join(" ")
    );

    // A fresh database per run, named so `make test-clean` never drops it mid-run.
    let mut env = testing::TestEnv::new();
    env.database = format!("billing_bench_{}", env.id);
    env.common.database.url = format!("{}/{}", testing::test_server_url(), env.database);
    env.common.database.pool_size = 8;
    db::ensure_database(&env.common.database.url)
        .await
        .expect("bench database");
    db::migrate(&env.common.database.url, "billing", sync_worker::MIGRATIONS)
        .await
        .expect("migrations");
    let pool = db::pool(&env.common.database).expect("pool");

    let mut config = ApiConfig::new(
        fake.base_url.clone(),
        SecretString::from("rk_test_fake"),
        true,
    );
    config.requests_per_second = u32::try_from(rate).expect("rate fits u32");
    let api = StripeApi::new(config).expect("client");
    let scope = Scope {
        tenant_id: "tenant-bench".into(),
        account_id: summary["platform_account"]
            .as_str()
            .unwrap_or("acct_bench")
            .to_owned(),
    };
    let started = Instant::now();
    let progress = backfill::run(&pool, &api, &scope, uuid::Uuid::now_v7())
        .await
        .expect("backfill");
    let seconds = started.elapsed().as_secs_f64();
    let usage = api.usage();
    print_lists(&pool, progress.run_id).await;
    drop(pool);
    env.cleanup(&[]).await;
    drop(fake);
    assert_eq!(
        u64::try_from(progress.objects_done).unwrap_or(0),
        objects_expected,
        "the backfill stored every object of the book"
    );
    Outcome {
        seconds,
        requests: usage.requests,
        throttled: usage.throttled,
        retries: usage.retries,
        objects: progress.objects_done,
    }
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let seed = env_or("BENCH_SEED", 7);
    let rate = env_or("BENCH_RATE", 100);
    let latency_ms = env_or("BENCH_LATENCY_MS", 0);
    let sizes: Vec<u64> = std::env::var("BENCH_SIZES")
        .unwrap_or_else(|_| "1000,10000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let binary = std::env::current_exe()
        .expect("own path")
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("stripe-fake"))
        .expect("target dir");
    assert!(
        binary.exists(),
        "build the fake first (cargo build --release -p stripe-fake): {}",
        binary.display()
    );
    let mut results = Vec::new();
    for customers in sizes {
        let o = run_once(&binary, customers, seed, rate, latency_ms).await;
        let req_per_s = o.requests as f64 / o.seconds;
        // The bucket starts full (one second's burst), then refills at `rate`: no walk
        // can spend these requests faster than this.
        let floor = o.requests.saturating_sub(rate) as f64 / rate as f64;
        println!(
            "INFO backfill customers={customers} (fake latency {latency_ms} ms): {:.2} s, {} objects \
             ({:.0} objects/s), {} requests ({} retries, {} throttled by the fake), {:.1} req/s \
             against the {rate} req/s limit; the bucket's floor for these requests is {floor:.2} s \
             (burst {rate} + {rate}/s): {:.0}% of the limit used",
            o.seconds,
            o.objects,
            o.objects as f64 / o.seconds,
            o.requests,
            o.retries,
            o.throttled,
            req_per_s,
            100.0 * floor / o.seconds,
        );
        results.push((customers, o.seconds));
    }
    let rss_mb = status_kb("self", "VmHWM:") / 1024.0;
    println!("INFO worker (this process) peak RSS {rss_mb:.1} MB");
    for (customers, seconds) in results {
        let label = if customers % 1000 == 0 {
            format!("{}k", customers / 1000)
        } else {
            customers.to_string()
        };
        println!("RESULT backfill_{label}_s {seconds:.2}");
    }
    println!("RESULT backfill_rss_mb {rss_mb:.1}");
}
