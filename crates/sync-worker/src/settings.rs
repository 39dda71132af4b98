//! The `[sync_worker]` section; the master keys that open connection secrets come from the
//! environment only (`BILLING_MASTER_KEYS`, shared with query-api).

use std::net::SocketAddr;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct SyncWorkerSettings {
    pub listen: SocketAddr,
    /// `STRIPE_API_BASE` overrides.
    pub stripe_api_base: String,
    /// 0 = Stripe's limit for the key's mode.
    pub requests_per_second: u32,
    pub reconcile_interval_secs: u64,
}

impl SyncWorkerSettings {
    pub fn with_env(mut self) -> Self {
        if let Ok(base) = std::env::var("STRIPE_API_BASE") {
            self.stripe_api_base = base;
        }
        self
    }

    pub fn validate(&self) -> Result<(), platform::config::ConfigError> {
        use platform::config::ConfigError;
        if !(self.stripe_api_base.starts_with("https://")
            || self.stripe_api_base.starts_with("http://"))
        {
            return Err(ConfigError::new(
                "sync_worker.stripe_api_base",
                "must be an http(s) URL",
            ));
        }
        if self.reconcile_interval_secs == 0 {
            return Err(ConfigError::new(
                "sync_worker.reconcile_interval_secs",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}
