//! Layered configuration shared by every service.
//!
//! Order (later wins): the defaults compiled into the binary (`config/default.toml`),
//! `config/<BILLING_ENV>.toml` under `BILLING_CONFIG_DIR` (default `./config`) when present,
//! an optional env file (`BILLING_ENV_FILE`), `BILLING__SECTION__KEY` environment variables, and
//! finally the conventional `DATABASE_URL` / `AMQP_URL` variables.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context as _;
use serde::{de::DeserializeOwned, Deserialize};

/// The defaults every binary carries, so a container needs no config files to start.
pub const DEFAULT_TOML: &str = include_str!("../../../config/default.toml");

/// Settings every service shares.
#[derive(Debug, Clone, Deserialize)]
pub struct CommonSettings {
    pub database: DatabaseSettings,
    pub amqp: AmqpSettings,
    pub telemetry: TelemetrySettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// Postgres URL; `DATABASE_URL` overrides.
    pub url: String,
    /// Connections kept by each service's pool.
    pub pool_size: usize,
    /// Create the database when it does not exist (dev and tests; off in production).
    pub create_if_missing: bool,
    /// Run this service's migrations when `serve` starts (Kubernetes uses the `migrate` job instead).
    pub migrate_on_start: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AmqpSettings {
    /// AMQP URL; `AMQP_URL` overrides.
    pub url: String,
    /// Prefix for every exchange and queue name; lets tests and environments share one broker.
    #[serde(default)]
    pub namespace: String,
    /// Unacknowledged deliveries each consumer holds at once.
    pub prefetch: u16,
    /// Deliveries of one message before it is dead-lettered.
    pub delivery_limit: u32,
    /// In-process retries of a transient handler failure before the message is requeued.
    pub handler_retries: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TelemetrySettings {
    /// `tracing` filter directive, e.g. `info,lapin=warn`. `RUST_LOG` overrides.
    pub log_filter: String,
    /// `json` (production) or `pretty` (local reading).
    pub log_format: LogFormat,
    /// OTLP/HTTP traces endpoint, e.g. `http://otel-collector:4318/v1/traces`; empty = no export.
    #[serde(default)]
    pub otlp_endpoint: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

/// The listener of a service: its API (ingress, query-api) or only health and metrics (workers).
#[derive(Debug, Clone, Deserialize)]
pub struct HttpSettings {
    pub listen: SocketAddr,
}

/// The merged configuration, before it is split into typed sections.
pub type Raw = config::Config;

/// Loads the layered configuration.
pub fn load() -> anyhow::Result<Raw> {
    if let Ok(path) = std::env::var("BILLING_ENV_FILE") {
        dotenvy::from_path(&path).with_context(|| format!("reading env file {path}"))?;
    }
    let dir =
        std::env::var("BILLING_CONFIG_DIR").map_or_else(|_| PathBuf::from("config"), PathBuf::from);
    let env_name = std::env::var("BILLING_ENV").unwrap_or_else(|_| "local".into());

    let mut builder = config::Config::builder()
        .add_source(config::File::from_str(
            DEFAULT_TOML,
            config::FileFormat::Toml,
        ))
        .add_source(config::File::from(dir.join(format!("{env_name}.toml"))).required(false))
        .add_source(
            config::Environment::with_prefix("BILLING")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true),
        );
    for (var, key) in [("DATABASE_URL", "database.url"), ("AMQP_URL", "amqp.url")] {
        if let Ok(value) = std::env::var(var) {
            builder = builder.set_override(key, value)?;
        }
    }
    builder.build().context("reading configuration")
}

/// Deserializes one section (`""` = the whole tree, e.g. for [`CommonSettings`]). Sections are
/// read one at a time rather than through `#[serde(flatten)]`, which would lose the key path
/// that the error message must name.
pub fn section<T: DeserializeOwned>(raw: &Raw, key: &str) -> anyhow::Result<T> {
    let result = if key.is_empty() {
        raw.clone().try_deserialize::<T>()
    } else {
        raw.get::<T>(key)
    };
    result.map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))
}

/// Validates the shared sections, naming the failing key.
pub fn validate_common(common: &CommonSettings) -> Result<(), ConfigError> {
    let db = url::Url::parse(&common.database.url)
        .map_err(|e| ConfigError::new("database.url", e.to_string()))?;
    if !matches!(db.scheme(), "postgres" | "postgresql") {
        return Err(ConfigError::new(
            "database.url",
            "scheme must be postgres://",
        ));
    }
    if db.path().trim_start_matches('/').is_empty() {
        return Err(ConfigError::new("database.url", "must name a database"));
    }
    let amqp = url::Url::parse(&common.amqp.url)
        .map_err(|e| ConfigError::new("amqp.url", e.to_string()))?;
    if !matches!(amqp.scheme(), "amqp" | "amqps") {
        return Err(ConfigError::new(
            "amqp.url",
            "scheme must be amqp:// or amqps://",
        ));
    }
    if common.database.pool_size == 0 {
        return Err(ConfigError::new("database.pool_size", "must be at least 1"));
    }
    if common.amqp.prefetch == 0 {
        return Err(ConfigError::new("amqp.prefetch", "must be at least 1"));
    }
    if common.amqp.delivery_limit < 1 {
        return Err(ConfigError::new(
            "amqp.delivery_limit",
            "must be at least 1",
        ));
    }
    let ns = &common.amqp.namespace;
    if !ns
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(ConfigError::new(
            "amqp.namespace",
            "only letters, digits, '-', '_' and '.'",
        ));
    }
    if !common.telemetry.otlp_endpoint.is_empty() {
        url::Url::parse(&common.telemetry.otlp_endpoint)
            .map_err(|e| ConfigError::new("telemetry.otlp_endpoint", e.to_string()))?;
    }
    Ok(())
}

/// A configuration value that cannot be used, with the key that holds it.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration `{key}`: {reason}")]
pub struct ConfigError {
    pub key: &'static str,
    pub reason: String,
}

impl ConfigError {
    pub fn new(key: &'static str, reason: impl Into<String>) -> Self {
        Self {
            key,
            reason: reason.into(),
        }
    }
}

/// Parses a duration written like `500ms`, `5s`, `5m` or `1h` (config values stay readable).
pub fn parse_duration(key: &'static str, text: &str) -> Result<Duration, ConfigError> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| ConfigError::new(key, format!("`{text}` is not a duration")))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" | "" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => {
            return Err(ConfigError::new(
                key,
                format!("`{text}`: unit must be ms, s, m or h"),
            ))
        }
    };
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_validate() {
        let raw = config::Config::builder()
            .add_source(config::File::from_str(
                DEFAULT_TOML,
                config::FileFormat::Toml,
            ))
            .build()
            .unwrap();
        let common: CommonSettings = raw.try_deserialize().unwrap();
        validate_common(&common).unwrap();
        assert_eq!(
            common.database.url,
            "postgres://postgres@127.0.0.1:5432/billing"
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        let raw = config::Config::builder()
            .add_source(config::File::from_str(
                DEFAULT_TOML,
                config::FileFormat::Toml,
            ))
            .set_override("database.url", "mysql://x/y")
            .unwrap()
            .build()
            .unwrap();
        let common: CommonSettings = raw.try_deserialize().unwrap();
        let err = validate_common(&common).unwrap_err();
        assert_eq!(err.key, "database.url");

        let raw = config::Config::builder()
            .add_source(config::File::from_str(
                DEFAULT_TOML,
                config::FileFormat::Toml,
            ))
            .set_override("amqp.prefetch", "lots")
            .unwrap()
            .build()
            .unwrap();
        let err = raw
            .try_deserialize::<CommonSettings>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("amqp.prefetch"), "{err}");
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("k", "500ms").unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(parse_duration("k", "5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("k", "7").unwrap(), Duration::from_secs(7));
        assert_eq!(parse_duration("k", "3d").unwrap_err().key, "k");
        assert!(parse_duration("k", "ms").is_err());
    }
}
