//! `risk-engine`: signals, billing health and CSM alerts in the `risk` schema.
//!
//! Billing facts and matching links come in ([`intake`]); [`engine`] keeps the newest state
//! per object, asks the pure rules of [`domain::risk`] what changed, applies it to the
//! signals ([`signals`]), raises alerts ([`alerts`]), recomputes health ([`health`]) and
//! queues the events for CSCX ([`events`]) — one transaction per message. [`scan`] looks at
//! every customer again daily.

pub mod alerts;
pub mod delivery;
pub mod engine;
pub mod events;
pub mod health;
pub mod intake;
pub mod scan;
pub mod signals;
pub mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use contracts::{exchanges, queues};
use diesel_migrations::{embed_migrations, EmbeddedMigrations};
use domain::risk::{HealthWeights, RiskConfig};
use platform::{
    amqp::{run_consumer, ConsumerOptions, Publisher, QueueSpec, Topology},
    config::CommonSettings,
    service::{ServiceSettings, ServiceSpec, StartConsumers},
};
use serde::Deserialize;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/risk");

/// The `[risk_engine]` section.
#[derive(Debug, Clone, Deserialize)]
pub struct RiskEngineSettings {
    pub listen: SocketAddr,
    /// Seconds between scans of every customer (cards, late invoices, ageing signals).
    #[serde(default = "default_scan_interval")]
    pub scan_interval_secs: u64,
    /// Alert webhook delivery: first retry delay (doubling, at most an hour), attempts before
    /// `failed`, and the per-request timeout.
    #[serde(default = "default_retry_base_ms")]
    pub delivery_retry_base_ms: u64,
    #[serde(default = "default_max_attempts")]
    pub delivery_max_attempts: i32,
    #[serde(default = "default_delivery_timeout")]
    pub delivery_timeout_secs: u64,
    /// `[risk_engine.rules]`: severity thresholds (see docs/risk-model.md).
    #[serde(default)]
    pub rules: RiskConfig,
    /// `[risk_engine.health]`: weights, decay and bands of the health score.
    #[serde(default)]
    pub health: HealthWeights,
}

fn default_scan_interval() -> u64 {
    3600
}

fn default_retry_base_ms() -> u64 {
    5_000
}

fn default_max_attempts() -> i32 {
    10
}

fn default_delivery_timeout() -> u64 {
    10
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub common: CommonSettings,
    pub risk_engine: RiskEngineSettings,
}

impl ServiceSettings for Settings {
    fn from_config(raw: &platform::config::Raw) -> anyhow::Result<Self> {
        let risk_engine: RiskEngineSettings = platform::config::section(raw, "risk_engine")?;
        let invalid = |e: domain::risk::RiskConfigError| {
            anyhow::anyhow!("invalid configuration: risk_engine.{e}")
        };
        risk_engine.rules.validate().map_err(invalid)?;
        risk_engine.health.validate().map_err(invalid)?;
        if risk_engine.scan_interval_secs == 0 {
            anyhow::bail!(
                "invalid configuration: risk_engine.scan_interval_secs must be at least 1"
            );
        }
        Ok(Self {
            common: platform::config::section(raw, "")?,
            risk_engine,
        })
    }

    fn common(&self) -> &CommonSettings {
        &self.common
    }
}

pub fn spec() -> ServiceSpec {
    ServiceSpec {
        name: "risk-engine",
        schema: "risk",
        migrations: || MIGRATIONS,
        topology: Topology::new()
            .exchange(exchanges::RISK)
            .queue(QueueSpec::new(queues::RISK_BILLING).bind(exchanges::BILLING, "#"))
            .queue(QueueSpec::new(queues::RISK_MATCHING).bind(exchanges::MATCHING, "link.changed"))
            .queue(QueueSpec::new(queues::RISK_RULES).bind(exchanges::RISK, "rule.requested")),
    }
}

/// The consumers, the daily scan, the alert deliverer and the outbox relay. `sealer` opens
/// tenants' webhook secrets; without it alerts go out on the bus only.
pub fn consumers(
    settings: &Settings,
    sealer: Option<Arc<platform::crypto::Sealer>>,
) -> StartConsumers {
    let settings = settings.clone();
    Box::new(move |pool, broker, cancel| {
        let amqp = &settings.common.amqp;
        let relay = events::outbox().relay(pool.clone(), Arc::new(Publisher::new(broker.clone())));
        let wake = relay.wake.clone();
        let engine = Arc::new(engine::Engine {
            config: settings.risk_engine.rules.clone(),
            weights: settings.risk_engine.health.clone(),
        });
        let facts = Arc::new(intake::Facts {
            pool: pool.clone(),
            engine: engine.clone(),
            relay: wake.clone(),
        });
        let links = Arc::new(intake::Links {
            pool: pool.clone(),
            engine: engine.clone(),
            relay: wake.clone(),
        });
        let rules = Arc::new(intake::Rules {
            pool: pool.clone(),
            relay: wake.clone(),
        });
        let deliverer = delivery::Deliverer {
            pool: pool.clone(),
            sealer,
            http: reqwest::Client::new(),
            options: delivery::DeliveryOptions {
                retry_base: Duration::from_millis(settings.risk_engine.delivery_retry_base_ms),
                max_attempts: settings.risk_engine.delivery_max_attempts,
                timeout: Duration::from_secs(settings.risk_engine.delivery_timeout_secs),
                ..Default::default()
            },
            wake: Arc::new(tokio::sync::Notify::new()),
        };
        vec![
            tokio::spawn(relay.run(cancel.clone())),
            tokio::spawn(deliverer.run(cancel.clone())),
            tokio::spawn(scan::run(
                pool,
                engine,
                wake,
                Duration::from_secs(settings.risk_engine.scan_interval_secs),
                cancel.clone(),
            )),
            tokio::spawn(run_consumer(
                broker.clone(),
                ConsumerOptions::from_settings(queues::RISK_BILLING, amqp),
                facts,
                cancel.clone(),
            )),
            tokio::spawn(run_consumer(
                broker.clone(),
                ConsumerOptions::from_settings(queues::RISK_MATCHING, amqp),
                links,
                cancel.clone(),
            )),
            tokio::spawn(run_consumer(
                broker,
                ConsumerOptions::from_settings(queues::RISK_RULES, amqp),
                rules,
                cancel,
            )),
        ]
    })
}
