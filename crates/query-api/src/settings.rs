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
    /// The CSCX web origins (comma-separated, e.g. `https://app.cscx.io`): the only ones
    /// CORS admits and the only pages that may frame the widget. Empty: none.
    #[serde(default)]
    pub cscx_origins: String,
    /// Requests per second one token may make (sustained), and the burst above it.
    #[serde(default = "default_rate")]
    pub rate_limit_per_second: u32,
    #[serde(default = "default_burst")]
    pub rate_limit_burst: u32,
    /// Platform secret key for the OAuth token exchange; from `STRIPE_SECRET_KEY` only.
    #[serde(skip)]
    pub platform_secret_key: Option<String>,
}

fn default_rate() -> u32 {
    20
}

fn default_burst() -> u32 {
    40
}

impl QueryApiSettings {
    /// The configured CSCX origins, trimmed, without empties.
    pub fn origins(&self) -> Vec<&str> {
        self.cscx_origins
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .collect()
    }

    /// The widget's CSP `frame-ancestors`: the CSCX origins, or `'self'` when none is set.
    pub fn frame_ancestors(&self) -> String {
        let origins = self.origins();
        if origins.is_empty() {
            "'self'".into()
        } else {
            origins.join(" ")
        }
    }

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
        for origin in self.origins() {
            let parsed = url::Url::parse(origin).map_err(|_| {
                ConfigError::new("query_api.cscx_origins", "each origin must be a URL")
            })?;
            let bare = parsed.path() == "/" && !origin.ends_with('/');
            if !matches!(parsed.scheme(), "http" | "https")
                || !bare
                || parsed.query().is_some()
                || parsed.host().is_none()
            {
                return Err(ConfigError::new(
                    "query_api.cscx_origins",
                    "each origin is scheme://host[:port], without a path",
                ));
            }
        }
        if self.rate_limit_per_second == 0 || self.rate_limit_burst == 0 {
            return Err(ConfigError::new(
                "query_api.rate_limit_per_second",
                "rate limit and burst must be at least 1",
            ));
        }
        Ok(())
    }
}
