//! Signed webhook delivery: a background queue that POSTs each event to the configured
//! endpoint with `Stripe-Signature: t=…,v1=…`, retrying with backoff, and optionally
//! duplicating, dropping or reordering events for tests.

use crate::config::WebhookConfig;
use crate::model::Event;
use crate::rng::Rng;
use futures_util::StreamExt as _;
use ring::hmac;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// `t=<t>,v1=<hex hmac_sha256(secret, "<t>.<body>")>`, as Stripe signs.
pub fn signature_header(secret: &str, t: i64, body: &[u8]) -> String {
    format!("t={t},v1={}", sign(secret, t, body))
}

/// Hex HMAC-SHA256 of `"{t}.{body}"` keyed with the whole secret string (`whsec_…`).
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(t.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    hex::encode(ctx.sign().as_ref())
}

/// Delivery counters, readable from `/_admin/summary`.
#[derive(Debug, Default)]
pub struct Stats {
    pub queued: AtomicU64,
    pub delivered: AtomicU64,
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
    pub duplicated: AtomicU64,
    pub attempts: AtomicU64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub queued: u64,
    pub delivered: u64,
    pub failed: u64,
    pub dropped: u64,
    pub duplicated: u64,
    pub attempts: u64,
}

impl Stats {
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            queued: self.queued.load(Ordering::Relaxed),
            delivered: self.delivered.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            duplicated: self.duplicated.load(Ordering::Relaxed),
            attempts: self.attempts.load(Ordering::Relaxed),
        }
    }
}

#[derive(Clone)]
struct Delivery {
    body: Arc<String>,
    connect: bool,
}

/// What goes wrong on the way to the endpoint; changeable while the fake runs
/// (`POST /_admin/faults`), so a test can inject faults for a while and then stop.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeliveryFaults {
    /// Fraction of events never delivered.
    pub drop_rate: f64,
    /// Fraction of events delivered `duplicate_copies` times.
    pub duplicate_rate: f64,
    /// Deliveries of a duplicated event (at least 2).
    pub duplicate_copies: u32,
    /// Deliver each burst (copies included) in a random order.
    pub shuffle: bool,
}

impl DeliveryFaults {
    pub fn of(config: &WebhookConfig) -> Self {
        DeliveryFaults {
            drop_rate: config.drop_rate,
            duplicate_rate: config.duplicate_rate,
            duplicate_copies: config.duplicate_copies,
            shuffle: config.shuffle,
        }
        .bounded()
    }

    /// Rates within 0..=1, at least two copies of a duplicated event.
    fn bounded(self) -> Self {
        DeliveryFaults {
            drop_rate: self.drop_rate.clamp(0.0, 1.0),
            duplicate_rate: self.duplicate_rate.clamp(0.0, 1.0),
            duplicate_copies: self.duplicate_copies.max(2),
            shuffle: self.shuffle,
        }
    }
}

/// The sending side of the delivery queue.
#[derive(Clone)]
pub struct WebhookQueue {
    tx: Option<mpsc::UnboundedSender<Delivery>>,
    config: WebhookConfig,
    faults: Arc<parking_lot::RwLock<DeliveryFaults>>,
    pub stats: Arc<Stats>,
}

impl WebhookQueue {
    /// Starts the delivery task on the current tokio runtime when a URL is configured.
    pub fn start(config: WebhookConfig) -> WebhookQueue {
        let stats = Arc::new(Stats::default());
        let faults = Arc::new(parking_lot::RwLock::new(DeliveryFaults::of(&config)));
        let any_target = config.url.is_some() || config.connect_url.is_some();
        let tx = if any_target {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(deliver_loop(
                rx,
                config.clone(),
                faults.clone(),
                stats.clone(),
            ));
            Some(tx)
        } else {
            None
        };
        WebhookQueue {
            tx,
            config,
            faults,
            stats,
        }
    }

    pub fn faults(&self) -> DeliveryFaults {
        self.faults.read().clone()
    }

    /// Applies to every burst delivered from now on.
    pub fn set_faults(&self, faults: DeliveryFaults) {
        *self.faults.write() = faults.bounded();
    }

    /// A queue that never delivers.
    pub fn disabled() -> WebhookQueue {
        let config = WebhookConfig::default();
        WebhookQueue {
            tx: None,
            faults: Arc::new(parking_lot::RwLock::new(DeliveryFaults::of(&config))),
            config,
            stats: Arc::new(Stats::default()),
        }
    }

    /// Whether an event of this kind (platform or connected) has a destination.
    pub fn has_target(&self, connect: bool) -> bool {
        self.tx.is_some()
            && if connect {
                self.config.connect_url.is_some() || self.config.url.is_some()
            } else {
                self.config.url.is_some()
            }
    }

    pub fn enqueue(&self, events: &[Event]) {
        let Some(tx) = &self.tx else { return };
        for e in events {
            let connect = e.account.is_some();
            if !self.has_target(connect) {
                continue;
            }
            let body = serde_json::to_string_pretty(e).unwrap_or_default();
            self.stats.queued.fetch_add(1, Ordering::Relaxed);
            let _ = tx.send(Delivery {
                body: Arc::new(body),
                connect,
            });
        }
    }
}

async fn deliver_loop(
    mut rx: mpsc::UnboundedReceiver<Delivery>,
    config: WebhookConfig,
    faults: Arc<parking_lot::RwLock<DeliveryFaults>>,
    stats: Arc<Stats>,
) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhook client could not be built; deliveries disabled");
            return;
        }
    };
    let mut rng = Rng::new(config.seed);
    while let Some(first) = rx.recv().await {
        let faults = faults.read().clone();
        if faults.shuffle {
            // Let a burst accumulate so there is something to reorder.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut batch = vec![first];
        while let Ok(d) = rx.try_recv() {
            batch.push(d);
        }
        let sends = plan_burst(batch, &faults, &mut rng, &stats);
        futures_util::stream::iter(sends)
            .for_each_concurrent(config.concurrency.max(1), |d| {
                deliver(&client, &config, &stats, d)
            })
            .await;
    }
}

/// One delivery; a refused or failed one is retried in the background with backoff.
async fn deliver(
    client: &reqwest::Client,
    config: &WebhookConfig,
    stats: &Arc<Stats>,
    d: Delivery,
) {
    let (url, secret) = match (&config.connect_url, d.connect) {
        (Some(u), true) => (u.clone(), config.connect_secret.clone()),
        _ => (
            config.url.clone().unwrap_or_default(),
            config.secret.clone(),
        ),
    };
    if send_once(client, &url, &secret, &d.body, stats).await {
        return;
    }
    let client = client.clone();
    let stats = stats.clone();
    let (max, base) = (config.max_attempts, config.retry_base_ms);
    tokio::spawn(async move {
        let mut delay = base;
        for _ in 1..max {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            if send_once(&client, &url, &secret, &d.body, &stats).await {
                return;
            }
            delay = delay.saturating_mul(2);
        }
        stats.failed.fetch_add(1, Ordering::Relaxed);
    });
}

/// What one burst of queued events becomes on the wire: drops removed, duplicates
/// copied, then (when shuffling) everything reordered — so the copies of one event
/// need not arrive back to back, as with Stripe's retries.
fn plan_burst(
    batch: Vec<Delivery>,
    faults: &DeliveryFaults,
    rng: &mut Rng,
    stats: &Stats,
) -> Vec<Delivery> {
    let mut sends = Vec::with_capacity(batch.len());
    for d in batch {
        if rng.chance(faults.drop_rate) {
            stats.dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let copies = if rng.chance(faults.duplicate_rate) {
            stats.duplicated.fetch_add(1, Ordering::Relaxed);
            faults.duplicate_copies.max(2)
        } else {
            1
        };
        sends.extend(std::iter::repeat_n(d, copies as usize));
    }
    if faults.shuffle {
        for i in (1..sends.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            sends.swap(i, j);
        }
    }
    sends
}

async fn send_once(
    client: &reqwest::Client,
    url: &str,
    secret: &str,
    body: &str,
    stats: &Stats,
) -> bool {
    stats.attempts.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let res = client
        .post(url)
        .header("Content-Type", "application/json; charset=utf-8")
        .header(
            "User-Agent",
            "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        )
        .header(
            "Stripe-Signature",
            signature_header(secret, t, body.as_bytes()),
        )
        .body(body.to_string())
        .send()
        .await;
    match res {
        Ok(r) if r.status().is_success() => {
            stats.delivered.fetch_add(1, Ordering::Relaxed);
            true
        }
        Ok(r) => {
            tracing::debug!(status = %r.status(), url, "webhook endpoint refused");
            false
        }
        Err(e) => {
            tracing::debug!(error = %e, url, "webhook delivery failed");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn burst(n: usize) -> Vec<Delivery> {
        (0..n)
            .map(|i| Delivery {
                body: Arc::new(format!("evt_{i}")),
                connect: false,
            })
            .collect()
    }

    fn bodies(sends: &[Delivery]) -> Vec<String> {
        sends.iter().map(|d| d.body.to_string()).collect()
    }

    #[test]
    fn a_quiet_burst_goes_out_as_queued() {
        let faults = DeliveryFaults::of(&WebhookConfig::default());
        let sends = plan_burst(burst(5), &faults, &mut Rng::new(1), &Stats::default());
        assert_eq!(
            bodies(&sends),
            ["evt_0", "evt_1", "evt_2", "evt_3", "evt_4"]
        );
    }

    #[test]
    fn duplicates_are_copied_and_spread_by_the_shuffle() {
        let faults = DeliveryFaults {
            drop_rate: 0.0,
            duplicate_rate: 1.0,
            duplicate_copies: 3,
            shuffle: true,
        };
        let stats = Stats::default();
        let sends = plan_burst(burst(20), &faults, &mut Rng::new(4), &stats);
        assert_eq!(sends.len(), 60);
        assert_eq!(stats.duplicated.load(Ordering::Relaxed), 20);
        let mut sorted = bodies(&sends);
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 20, "every event, three times");
        let adjacent_copies = sends
            .windows(3)
            .filter(|w| w[0].body == w[1].body && w[1].body == w[2].body)
            .count();
        assert!(adjacent_copies < 20, "the copies are spread out");
    }

    #[test]
    fn drops_are_counted_and_never_sent() {
        let faults = DeliveryFaults {
            drop_rate: 0.5,
            duplicate_rate: 0.0,
            duplicate_copies: 2,
            shuffle: false,
        };
        let stats = Stats::default();
        let sends = plan_burst(burst(200), &faults, &mut Rng::new(9), &stats);
        let dropped = stats.dropped.load(Ordering::Relaxed) as usize;
        assert_eq!(sends.len() + dropped, 200);
        assert!((60..140).contains(&dropped), "{dropped}");
    }

    #[test]
    fn faults_change_while_the_queue_runs() {
        let queue = WebhookQueue::disabled();
        queue.set_faults(DeliveryFaults {
            drop_rate: 3.0,
            duplicate_rate: 0.1,
            duplicate_copies: 0,
            shuffle: true,
        });
        let now = queue.faults();
        assert_eq!(
            (now.drop_rate, now.duplicate_copies, now.shuffle),
            (1.0, 2, true)
        );
    }

    #[test]
    fn signature_verifies_with_ring() {
        let body = br#"{"id":"evt_1","object":"event"}"#;
        let header = signature_header("whsec_test", 1_700_000_000, body);
        let mut t = None;
        let mut v1 = None;
        for part in header.split(',') {
            match part.split_once('=') {
                Some(("t", x)) => t = Some(x.to_string()),
                Some(("v1", x)) => v1 = Some(x.to_string()),
                _ => panic!("unexpected part {part}"),
            }
        }
        let t = t.unwrap();
        assert_eq!(t, "1700000000");
        let sig = hex::decode(v1.unwrap()).unwrap();
        assert_eq!(sig.len(), 32);
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"whsec_test");
        let mut payload = format!("{t}.").into_bytes();
        payload.extend_from_slice(body);
        hmac::verify(&key, &payload, &sig).unwrap();
        assert!(hmac::verify(&key, b"tampered", &sig).is_err());
    }
}
