//! query-api configuration: the `[query_api]` section, env overrides for Stripe's base URLs,
//! and secrets (JWT key, master encryption keys) from the environment only.

use std::net::SocketAddr;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct QueryApiSettings {
    pub listen: SocketAddr,
    /// Stripe REST base; `STRIPE_API_BASE` overrides (the fake in dev).
    pub stripe_api_base: String,
    /// Stripe Connect base; `STRIPE_CONNECT_BASE` overrides.
    pub stripe_connect_base: String,
    /// Which mode this installation runs in; keys of the other mode are refused.
    pub stripe_livemode: bool,
    /// Accept full secret keys (`sk_…`) — dev/demo only, logged as a warning.
    pub allow_secret_keys: bool,
    /// Accept `http://` alert webhook URLs (dev/tests); production requires `https://`.
    #[serde(default)]
    pub allow_http_alert_webhooks: bool,
    /// Connect platform client id (`ca_…`); empty disables Connect OAuth.
    /// `STRIPE_CONNECT_CLIENT_ID` overrides.
    #[serde(default)]
    pub connect_client_id: String,
    /// Public URL of `GET /api/integrations/stripe/callback`, registered with Stripe.
    pub oauth_redirect_url: String,
    /// How long an OAuth `state` stays valid, seconds.
    pub oauth_state_ttl_secs: i64,
    /// Platform secret key for the OAuth token exchange; from `STRIPE_SECRET_KEY` only.
    #[serde(skip)]
    pub platform_secret_key: Option<String>,
}

impl QueryApiSettings {
    pub fn with_env(mut self) -> Self {
        if let Ok(base) = std::env::var("STRIPE_API_BASE") {
            self.stripe_api_base = base;
        }
        if let Ok(base) = std::env::var("STRIPE_CONNECT_BASE") {
            self.stripe_connect_base = base;
        }
        if let Ok(id) = std::env::var("STRIPE_CONNECT_CLIENT_ID") {
            self.connect_client_id = id;
        }
        self.platform_secret_key = std::env::var("STRIPE_SECRET_KEY")
            .ok()
            .filter(|k| !k.trim().is_empty());
        self
    }

    pub fn validate(&self) -> Result<(), platform::config::ConfigError> {
        use platform::config::ConfigError;
        for (key, value) in [
            ("query_api.stripe_api_base", &self.stripe_api_base),
            ("query_api.stripe_connect_base", &self.stripe_connect_base),
        ] {
            if !(value.starts_with("https://") || value.starts_with("http://")) {
                return Err(ConfigError::new(key, "must be an http(s) URL"));
            }
        }
        Ok(())
    }
}
