//! Benchmark: list-page throughput over HTTP on loopback (rate limit off) and the
//! time and peak RSS of seeding a 10,000-customer book. Ends with the lines
//! `RESULT fake_pages_per_s <n>` and `RESULT fake_seed_10k_s <n>`.

use crate::config::FakeConfig;
use crate::server::FakeServer;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Benchmark parameters.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub customers: usize,
    pub seed: u64,
    pub seconds: f64,
    pub clients: usize,
    /// Resources the clients page through, round-robin by client.
    pub resources: Vec<String>,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            customers: 10_000,
            seed: 1,
            seconds: 3.0,
            clients: 4,
            resources: vec![
                "customers".into(),
                "subscriptions".into(),
                "invoices".into(),
            ],
        }
    }
}

/// Peak resident set size of this process in KiB (`VmHWM`), if readable.
pub fn peak_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

#[derive(Debug, Clone)]
pub struct BenchReport {
    pub seed_seconds: f64,
    pub seed_peak_rss_mib: f64,
    pub warm_seconds: f64,
    pub invoices: usize,
    /// Pages of the headline resource.
    pub pages: u64,
    pub pages_per_s: f64,
    /// Pages/s per resource (headline first).
    pub per_resource: Vec<(String, f64)>,
}

/// The object prefix that starts each listed object, to find the next cursor
/// without parsing the page.
fn id_prefix(resource: &str) -> &'static str {
    match resource {
        "customers" => "{\"id\":\"cus_",
        "subscriptions" => "{\"id\":\"sub_",
        "invoices" => "{\"id\":\"in_",
        "charges" => "{\"id\":\"ch_",
        "payment_intents" => "{\"id\":\"pi_",
        _ => "{\"id\":\"",
    }
}

fn cursor(body: &str, resource: &str) -> Option<String> {
    let prefix = id_prefix(resource);
    let at = body.rfind(prefix)? + "{\"id\":\"".len();
    let rest = &body[at..];
    let end = rest.find('"')?;
    Some(rest[..end].to_string())
}

pub async fn run(opts: &BenchOptions) -> anyhow::Result<BenchReport> {
    let t0 = Instant::now();
    let (state, _truth) = crate::seed::generate(opts.customers, opts.seed);
    let seed_seconds = t0.elapsed().as_secs_f64();
    let seed_peak_rss_mib = peak_rss_kib().unwrap_or(0) as f64 / 1024.0;
    let invoices = state.platform_book().invoices.len();
    // Serialise everything once, as `serve` does in the background at start.
    let tw = Instant::now();
    for b in state.books.values() {
        b.warm();
    }
    let warm_seconds = tw.elapsed().as_secs_f64();
    let fake = FakeServer::start_with_state(
        FakeConfig {
            rate_limit: 0,
            admin_enabled: false,
            ..Default::default()
        },
        state,
    )
    .await?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let base = format!("http://{}", fake.addr());
    // Headline: every client pages through the first resource.
    let headline = opts
        .resources
        .first()
        .cloned()
        .unwrap_or_else(|| "customers".into());
    let (pages, elapsed) = drive(
        &base,
        std::slice::from_ref(&headline),
        opts.clients,
        opts.seconds,
    )
    .await?;
    let mut per_resource = vec![(headline, pages as f64 / elapsed)];
    // Informational: the other resources, one at a time, for a second each.
    for r in opts.resources.iter().skip(1) {
        let (p, e) = drive(&base, std::slice::from_ref(r), opts.clients, 1.0).await?;
        per_resource.push((r.clone(), p as f64 / e));
    }
    fake.stop().await;
    Ok(BenchReport {
        seed_seconds,
        seed_peak_rss_mib,
        warm_seconds,
        invoices,
        pages,
        pages_per_s: pages as f64 / elapsed,
        per_resource,
    })
}

/// Runs `clients` concurrent pagers over `resources` for `seconds`; returns pages done.
async fn drive(
    base: &str,
    resources: &[String],
    clients: usize,
    seconds: f64,
) -> anyhow::Result<(u64, f64)> {
    let stop_at = Instant::now() + Duration::from_secs_f64(seconds.clamp(0.5, 60.0));
    let counters: Vec<Arc<AtomicU64>> = resources
        .iter()
        .map(|_| Arc::new(AtomicU64::new(0)))
        .collect();
    let mut tasks = vec![];
    let started = Instant::now();
    for c in 0..clients.max(1) {
        let ri = c % resources.len().max(1);
        let resource = resources
            .get(ri)
            .cloned()
            .unwrap_or_else(|| "customers".into());
        let counter = counters[ri].clone();
        let base = base.to_string();
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(4)
                .build()?;
            let mut after: Option<String> = None;
            while Instant::now() < stop_at {
                let mut url = format!("{base}/v1/{resource}?limit=100");
                if resource == "subscriptions" {
                    url.push_str("&status=all");
                }
                if let Some(a) = &after {
                    url.push_str("&starting_after=");
                    url.push_str(a);
                }
                let resp = client.get(&url).bearer_auth("sk_test_fake").send().await?;
                if !resp.status().is_success() {
                    anyhow::bail!("{url}: {}", resp.status());
                }
                let bytes = resp.bytes().await?;
                let body = std::str::from_utf8(&bytes)?;
                counter.fetch_add(1, Ordering::Relaxed);
                // The envelope's has_more is the last one in the body.
                let more = body
                    .rfind("\"has_more\":")
                    .is_some_and(|i| body[i + 11..].starts_with("true"));
                after = if more { cursor(body, &resource) } else { None };
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let pages: u64 = counters.iter().map(|c| c.load(Ordering::Relaxed)).sum();
    Ok((pages, elapsed))
}

#[cfg(test)]
mod tests {
    #[test]
    fn cursor_is_last_top_level_id() {
        let body = r#"{"object":"list","data":[{"id":"cus_1","x":1},{"id":"cus_2"}],"has_more":true,"url":"/v1/customers"}"#;
        assert_eq!(super::cursor(body, "customers").as_deref(), Some("cus_2"));
        let inv = r#"{"data":[{"id":"in_1","lines":{"data":[{"id":"il_9"}]}}]}"#;
        assert_eq!(super::cursor(inv, "invoices").as_deref(), Some("in_1"));
    }
}
