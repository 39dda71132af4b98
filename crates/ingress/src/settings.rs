//! Ingress configuration: the `[ingress]` section plus webhook secrets from the environment.

use std::net::SocketAddr;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct IngressSettings {
    pub listen: SocketAddr,
    pub signature_tolerance_secs: i64,
    pub max_body_bytes: usize,
    pub body_read_timeout_ms: u64,
    pub default_tenant: String,
    pub group_commit_max: usize,
    pub outbox_batch: i64,
    pub outbox_poll_ms: u64,
    /// Platform endpoint secrets; from `STRIPE_WEBHOOK_SECRET` (comma-separated).
    #[serde(skip)]
    pub platform_secrets: Vec<String>,
    /// Connect endpoint secrets; from `STRIPE_CONNECT_WEBHOOK_SECRET` (comma-separated).
    #[serde(skip)]
    pub connect_secrets: Vec<String>,
}

impl IngressSettings {
    /// Reads the secrets from the environment (never from config files).
    pub fn with_env_secrets(mut self) -> Self {
        self.platform_secrets = split_secrets(std::env::var("STRIPE_WEBHOOK_SECRET").ok());
        self.connect_secrets = split_secrets(std::env::var("STRIPE_CONNECT_WEBHOOK_SECRET").ok());
        self
    }

    pub fn validate(&self) -> Result<(), platform::config::ConfigError> {
        use platform::config::ConfigError;
        if self.platform_secrets.is_empty() && self.connect_secrets.is_empty() {
            return Err(ConfigError::new(
                "STRIPE_WEBHOOK_SECRET",
                "no webhook secret configured (set STRIPE_WEBHOOK_SECRET and/or STRIPE_CONNECT_WEBHOOK_SECRET)",
            ));
        }
        if self.max_body_bytes == 0 {
            return Err(ConfigError::new(
                "ingress.max_body_bytes",
                "must be positive",
            ));
        }
        if self.group_commit_max == 0 {
            return Err(ConfigError::new(
                "ingress.group_commit_max",
                "must be positive",
            ));
        }
        if self.outbox_batch <= 0 {
            return Err(ConfigError::new("ingress.outbox_batch", "must be positive"));
        }
        if domain::TenantId::parse(&self.default_tenant).is_err() {
            return Err(ConfigError::new(
                "ingress.default_tenant",
                "must be a valid tenant id",
            ));
        }
        Ok(())
    }
}

fn split_secrets(value: Option<String>) -> Vec<String> {
    value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_split_on_commas() {
        assert_eq!(
            split_secrets(Some(" whsec_a, whsec_b ,,".into())),
            vec!["whsec_a", "whsec_b"]
        );
        assert!(split_secrets(None).is_empty());
    }
}
