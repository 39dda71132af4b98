//! `query-api`: the read API, Stripe connections, billing widget and chat commands; owns the
//! `integration` schema (connections, tokens, audit log).

pub mod alert_webhook;
pub mod alerts;
pub mod app;
pub mod audit;
pub mod auth;
pub mod chat;
pub mod connections;
pub mod deauthorization;
pub mod error;
pub mod matching;
pub mod oauth;
pub mod openapi;
pub mod rate_limit;
pub mod reads;
pub mod schema;
pub mod settings;
pub mod stripe_keys;
pub mod sync_jobs;
#[cfg(feature = "testing")]
pub mod testing;
pub mod ui;

/// The sealer lives in `platform` because the sync worker opens what this service seals.
pub use platform::crypto;

use contracts::{exchanges, queues};
use diesel_migrations::{embed_migrations, EmbeddedMigrations};
use platform::{
    amqp::{QueueSpec, Topology},
    config::CommonSettings,
    service::{ServiceSettings, ServiceSpec},
};

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/integration");

#[derive(Debug, Clone)]
pub struct Settings {
    pub common: CommonSettings,
    pub query_api: settings::QueryApiSettings,
}

impl ServiceSettings for Settings {
    fn from_config(raw: &platform::config::Raw) -> anyhow::Result<Self> {
        Ok(Self {
            common: platform::config::section(raw, "")?,
            query_api: platform::config::section::<settings::QueryApiSettings>(raw, "query_api")?
                .with_env(),
        })
    }

    fn common(&self) -> &CommonSettings {
        &self.common
    }
}

pub fn spec() -> ServiceSpec {
    ServiceSpec {
        name: "query-api",
        schema: "integration",
        migrations: || MIGRATIONS,
        topology: Topology::new()
            .exchange(exchanges::SYNC_JOBS)
            .queue(
                QueueSpec::new(queues::QUERY_API_CONNECTIONS)
                    .bind(exchanges::STRIPE_EVENTS, deauthorization::EVENT_TYPE),
            )
            // The queues of the commands this API sends (declared exactly as their owners
            // declare them), so a decision or rule waits durably even before the matcher or
            // risk engine first started.
            .queue(
                QueueSpec::new(queues::MATCHER_DECISIONS)
                    .bind(exchanges::MATCHING, "decision.requested"),
            )
            .queue(QueueSpec::new(queues::RISK_RULES).bind(exchanges::RISK, "rule.requested")),
    }
}
