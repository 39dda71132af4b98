//! Configuration of a fake instance. Every field has a default that suits tests.

use serde::{Deserialize, Serialize};

/// How the fake behaves. `FakeConfig::default()` is a quiet, fast fake on 127.0.0.1:0.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct FakeConfig {
    /// Address to bind; port 0 picks a free one (see `FakeServer::addr`).
    pub listen: String,
    /// Accepted API keys. `sk_test_…` keys may read and write; `rk_test_…` keys are
    /// restricted and read-only (writes answer 403).
    pub api_keys: Vec<String>,
    /// Connect platform client id accepted by `/oauth/authorize` and `/oauth/deauthorize`.
    pub connect_client_id: String,
    /// Token bucket rate in requests/second over all `/v1` and `/oauth` calls; 0 = off.
    pub rate_limit: u32,
    /// Fixed latency added to every `/v1` answer, in milliseconds.
    pub latency_ms: u64,
    /// Fraction (0.0..=1.0) of `/v1` requests answered 500 or 503 instead.
    pub error_rate: f64,
    /// Seed of the fault injector's generator (deterministic faults).
    pub fault_seed: u64,
    /// Add deprecated pre-basil fields (`subscription.current_period_*`,
    /// `invoice.subscription`, `invoice.charge`, `invoice.paid`, `charge.invoice`, ...).
    pub legacy_fields: bool,
    /// Whether `/_admin/*` is served (no auth: only enable on trusted hosts).
    pub admin_enabled: bool,
    /// Actix worker threads.
    pub workers: usize,
    /// Start of the fake clock (unix seconds); `None` = the seed's `now`, else wall clock.
    pub now: Option<i64>,
    /// Let the clock follow real time from its start (as Stripe's does); tests that want
    /// exact times keep it frozen and move it with `advance_time`.
    pub realtime_clock: bool,
    pub webhooks: WebhookConfig,
    /// Serialise every object once in a background thread at start, so the first
    /// backfill is as fast as later ones (costs CPU for a few seconds and memory).
    pub prewarm: bool,
    /// Book to generate at start; `None` starts empty.
    pub seed: Option<crate::seed::SeedOptions>,
}

impl Default for FakeConfig {
    fn default() -> Self {
        FakeConfig {
            listen: "127.0.0.1:0".into(),
            api_keys: vec!["sk_test_fake".into(), "rk_test_fake".into()],
            connect_client_id: "ca_fake".into(),
            rate_limit: 100,
            latency_ms: 0,
            error_rate: 0.0,
            fault_seed: 1,
            legacy_fields: false,
            admin_enabled: true,
            workers: 2,
            now: None,
            realtime_clock: false,
            webhooks: WebhookConfig::default(),
            prewarm: false,
            seed: None,
        }
    }
}

/// Where and how events are delivered.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct WebhookConfig {
    /// Endpoint for the platform's own events; `None` = do not deliver.
    pub url: Option<String>,
    /// Endpoint for connected accounts' events (`event.account` set); `None` = `url`.
    pub connect_url: Option<String>,
    /// Signing secret of `url`.
    pub secret: String,
    /// Signing secret of `connect_url`.
    pub connect_secret: String,
    /// Fraction of events delivered more than once (`duplicate_copies` times).
    pub duplicate_rate: f64,
    /// Deliveries of a duplicated event (at least 2).
    pub duplicate_copies: u32,
    /// Fraction of events never delivered.
    pub drop_rate: f64,
    /// Deliver each batch of queued events in a random order.
    pub shuffle: bool,
    /// Deliveries in flight at once. Stripe sends concurrently and promises no order; 1
    /// (the default) keeps a burst's order, which single-event tests read more easily.
    pub concurrency: usize,
    /// Attempts per event (first try included) before giving up.
    pub max_attempts: u32,
    /// Delay before the first retry (doubles each time), in milliseconds.
    pub retry_base_ms: u64,
    /// Seed of the delivery generator (duplicates, drops, shuffles).
    pub seed: u64,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            url: None,
            connect_url: None,
            secret: "whsec_fake".into(),
            connect_secret: "whsec_fake_connect".into(),
            duplicate_rate: 0.0,
            duplicate_copies: 2,
            drop_rate: 0.0,
            shuffle: false,
            concurrency: 1,
            max_attempts: 4,
            retry_base_ms: 200,
            seed: 7,
        }
    }
}
