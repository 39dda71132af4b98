//! One Stripe account's API: async-stripe's client with our own rate limit and retries.
//!
//! async-stripe retries by itself only with a fixed strategy and no shared budget, so its
//! client runs with `RequestStrategy::Once` and every attempt here first takes a token
//! from the bucket: retries spend the same budget as first tries and we stay under
//! Stripe's limit instead of bouncing off it.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use platform::backoff::Backoff;
use secrecy::{ExposeSecret as _, SecretString};
use stripe::{Client, ClientBuilder};
use stripe_client_core::{RequestStrategy, StripeRequest};

use crate::error::{classify, ApiError, Attempt};

/// Stripe's documented read limits: 100 requests/s in live mode, 25 in test mode.
pub const LIVE_RATE: u32 = 100;
pub const TEST_RATE: u32 = 25;

#[derive(Clone)]
pub struct ApiConfig {
    /// `https://api.stripe.com/` or the fake's base URL (trailing slash added if missing).
    pub base_url: String,
    /// Secret/restricted key or OAuth access token.
    pub secret: SecretString,
    /// `Stripe-Account` header: acting on a connected account with the platform's key.
    pub account: Option<String>,
    /// Requests per second this client may spend.
    pub requests_per_second: u32,
    /// Attempts per call, first try included.
    pub max_attempts: u32,
    /// First retry delay ceiling; doubles per retry (full jitter), capped at `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// Per-attempt timeout.
    pub timeout: Duration,
}

impl std::fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiConfig")
            .field("base_url", &self.base_url)
            .field("account", &self.account)
            .field("requests_per_second", &self.requests_per_second)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

impl ApiConfig {
    pub fn new(base_url: impl Into<String>, secret: SecretString, livemode: bool) -> Self {
        ApiConfig {
            base_url: base_url.into(),
            secret,
            account: None,
            requests_per_second: if livemode { LIVE_RATE } else { TEST_RATE },
            max_attempts: 8,
            base_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
            timeout: Duration::from_secs(30),
        }
    }
}

/// What one client has spent, for progress reports and benchmarks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub requests: u64,
    pub retries: u64,
    pub throttled: u64,
}

#[derive(Clone)]
pub struct StripeApi {
    client: Client,
    limiter: Arc<DefaultDirectRateLimiter>,
    config: Arc<ApiConfig>,
    usage: Arc<std::sync::Mutex<Usage>>,
}

impl std::fmt::Debug for StripeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeApi")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl StripeApi {
    pub fn new(config: ApiConfig) -> Result<Self, ApiError> {
        let mut base = config.base_url.clone();
        if !base.ends_with('/') {
            base.push('/');
        }
        let rate = NonZeroU32::new(config.requests_per_second)
            .ok_or_else(|| ApiError::Config("requests_per_second must be at least 1".into()))?;
        let mut builder = ClientBuilder::new(config.secret.expose_secret())
            .url(base)
            .request_strategy(RequestStrategy::Once)
            .timeout(config.timeout);
        if let Some(account) = &config.account {
            let id = account
                .parse()
                .map_err(|_| ApiError::Config(format!("invalid Stripe account id {account:?}")))?;
            builder = builder.account_id(id);
        }
        let client = builder
            .build()
            .map_err(|e| ApiError::Config(e.to_string()))?;
        // A burst of one second's worth: Stripe counts per second, not per minute.
        let limiter = RateLimiter::direct(Quota::per_second(rate).allow_burst(rate));
        Ok(StripeApi {
            client,
            limiter: Arc::new(limiter),
            config: Arc::new(config),
            usage: Arc::default(),
        })
    }

    pub fn usage(&self) -> Usage {
        *self.usage.lock().expect("usage lock")
    }

    pub fn config(&self) -> &ApiConfig {
        &self.config
    }

    /// Sends `request`, waiting for the rate limit before every attempt and retrying
    /// 429, 5xx, `lock_timeout` and transport failures with exponential backoff and jitter.
    /// `op` names the call in errors, logs and metrics (`customers.list`).
    pub async fn send<R>(&self, op: &'static str, request: &R) -> Result<R::Output, ApiError>
    where
        R: StripeRequest,
        R::Output: miniserde::Deserialize,
    {
        let mut backoff = Backoff::new(self.config.base_backoff, self.config.max_backoff);
        let mut attempts = 0;
        loop {
            self.limiter.until_ready().await;
            attempts += 1;
            self.count(|u| u.requests += 1);
            let started = Instant::now();
            let result = request.customize().send(&self.client).await;
            metrics::histogram!("stripe_api_request_seconds", "op" => op)
                .record(started.elapsed().as_secs_f64());
            let reason = match result {
                Ok(value) => {
                    metrics::counter!("stripe_api_requests_total", "op" => op, "outcome" => "ok")
                        .increment(1);
                    return Ok(value);
                }
                Err(err) => match classify(op, err) {
                    Attempt::Fail(err) => {
                        metrics::counter!("stripe_api_requests_total", "op" => op, "outcome" => "error")
                            .increment(1);
                        return Err(err);
                    }
                    Attempt::Retry(reason) => reason,
                },
            };
            let throttled = reason.starts_with("429");
            metrics::counter!("stripe_api_requests_total", "op" => op,
                "outcome" => if throttled { "throttled" } else { "retried" })
            .increment(1);
            if attempts >= self.config.max_attempts {
                return Err(ApiError::Exhausted {
                    op,
                    attempts,
                    last: reason,
                });
            }
            self.count(|u| {
                u.retries += 1;
                if throttled {
                    u.throttled += 1;
                }
            });
            let delay = backoff.next_delay();
            tracing::debug!(op, attempts, ?delay, reason, "retrying Stripe call");
            tokio::time::sleep(delay).await;
        }
    }

    fn count(&self, f: impl FnOnce(&mut Usage)) {
        f(&mut self.usage.lock().expect("usage lock"));
    }
}
