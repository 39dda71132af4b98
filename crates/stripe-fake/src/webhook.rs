//! Signed webhook delivery: a background queue that POSTs each event to the configured
//! endpoint with `Stripe-Signature: t=…,v1=…`, retrying with backoff, and optionally
//! duplicating, dropping or reordering events for tests.

use crate::config::WebhookConfig;
use crate::model::Event;
use crate::rng::Rng;
use ring::hmac;
use serde::Serialize;
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

struct Delivery {
    body: Arc<String>,
    connect: bool,
}

/// The sending side of the delivery queue.
#[derive(Clone)]
pub struct WebhookQueue {
    tx: Option<mpsc::UnboundedSender<Delivery>>,
    config: WebhookConfig,
    pub stats: Arc<Stats>,
}

impl WebhookQueue {
    /// Starts the delivery task on the current tokio runtime when a URL is configured.
    pub fn start(config: WebhookConfig) -> WebhookQueue {
        let stats = Arc::new(Stats::default());
        let any_target = config.url.is_some() || config.connect_url.is_some();
        let tx = if any_target {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(deliver_loop(rx, config.clone(), stats.clone()));
            Some(tx)
        } else {
            None
        };
        WebhookQueue { tx, config, stats }
    }

    /// A queue that never delivers.
    pub fn disabled() -> WebhookQueue {
        WebhookQueue {
            tx: None,
            config: WebhookConfig::default(),
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
        if config.shuffle {
            // Let a burst accumulate so there is something to reorder.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut batch = vec![first];
        while let Ok(d) = rx.try_recv() {
            batch.push(d);
        }
        if config.shuffle {
            for i in (1..batch.len()).rev() {
                let j = rng.below(i as u64 + 1) as usize;
                batch.swap(i, j);
            }
        }
        for d in batch {
            if rng.chance(config.drop_rate) {
                stats.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let copies = if rng.chance(config.duplicate_rate) {
                stats.duplicated.fetch_add(1, Ordering::Relaxed);
                2
            } else {
                1
            };
            for _ in 0..copies {
                let (url, secret) = if d.connect {
                    match &config.connect_url {
                        Some(u) => (u.clone(), config.connect_secret.clone()),
                        None => (
                            config.url.clone().unwrap_or_default(),
                            config.secret.clone(),
                        ),
                    }
                } else {
                    (
                        config.url.clone().unwrap_or_default(),
                        config.secret.clone(),
                    )
                };
                if !send_once(&client, &url, &secret, &d.body, &stats).await {
                    let client = client.clone();
                    let stats = stats.clone();
                    let body = d.body.clone();
                    let (max, base) = (config.max_attempts, config.retry_base_ms);
                    tokio::spawn(async move {
                        let mut delay = base;
                        for _ in 1..max {
                            tokio::time::sleep(Duration::from_millis(delay)).await;
                            if send_once(&client, &url, &secret, &body, &stats).await {
                                return;
                            }
                            delay = delay.saturating_mul(2);
                        }
                        stats.failed.fetch_add(1, Ordering::Relaxed);
                    });
                }
            }
        }
    }
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
