//! `risk-engine`: signals, billing health and CSM alerts in the `risk` schema.

use contracts::{exchanges, queues};
use diesel_migrations::{embed_migrations, EmbeddedMigrations};
use platform::{
    amqp::{QueueSpec, Topology},
    config::{CommonSettings, HttpSettings},
    service::ServiceSpec,
};
use serde::Deserialize;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/risk");

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    #[serde(flatten)]
    pub common: CommonSettings,
    pub risk_engine: HttpSettings,
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
