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
            resources: vec!["customers".into(), "subscriptions".into(), "invoices".into()],
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
    pub invoices: usize,
    pub pages: u64,
    pub pages_per_s: f64,
    pub per_resource: Vec<(String, u64)>,
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
    let stop_at = Instant::now() + Duration::from_secs_f64(opts.seconds.clamp(0.5, 60.0));
    let counters: Vec<Arc<AtomicU64>> = opts.resources.iter().map(|_| Arc::new(AtomicU64::new(0))).collect();
    let mut tasks = vec![];
    let started = Instant::now();
    for c in 0..opts.clients.max(1) {
        let ri = c % opts.resources.len().max(1);
        let resource = opts.resources.get(ri).cloned().unwrap_or_else(|| "customers".into());
        let counter = counters[ri].clone();
        let base = base.clone();
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder().pool_max_idle_per_host(4).build()?;
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
    fake.stop().await;
    let per_resource: Vec<(String, u64)> = opts
        .resources
        .iter()
        .zip(&counters)
        .map(|(r, c)| (r.clone(), c.load(Ordering::Relaxed)))
        .collect();
    let pages: u64 = per_resource.iter().map(|(_, n)| n).sum();
    Ok(BenchReport {
        seed_seconds,
        seed_peak_rss_mib,
        invoices,
        pages,
        pages_per_s: pages as f64 / elapsed,
        per_resource,
    })
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
