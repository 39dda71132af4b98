//! `risk-engine`: signals, billing health and CSM alerts in the `risk` schema.

use contracts::{exchanges, queues};
use diesel_migrations::{embed_migrations, EmbeddedMigrations};
use platform::{
    amqp::{QueueSpec, Topology},
    config::{CommonSettings, HttpSettings},
    service::{ServiceSettings, ServiceSpec},
};

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/risk");

#[derive(Debug, Clone)]
pub struct Settings {
    pub common: CommonSettings,
    pub risk_engine: HttpSettings,
}

impl ServiceSettings for Settings {
    fn from_config(raw: &platform::config::Raw) -> anyhow::Result<Self> {
        Ok(Self {
            common: platform::config::section(raw, "")?,
            risk_engine: platform::config::section(raw, "risk_engine")?,
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
            .queue(QueueSpec::new(queues::RISK_MATCHING).bind(exchanges::MATCHING, "#")),
    }
}
