//! `matcher`: links Stripe customers to CSCX accounts in the `matching` schema.

pub mod import;

use contracts::{exchanges, queues};
use diesel_migrations::{embed_migrations, EmbeddedMigrations};
use platform::{
    amqp::{QueueSpec, Topology},
    config::{CommonSettings, HttpSettings},
    service::{ServiceSettings, ServiceSpec},
};

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/matching");

#[derive(Debug, Clone)]
pub struct Settings {
    pub common: CommonSettings,
    pub matcher: HttpSettings,
}

impl ServiceSettings for Settings {
    fn from_config(raw: &platform::config::Raw) -> anyhow::Result<Self> {
        Ok(Self {
            common: platform::config::section(raw, "")?,
            matcher: platform::config::section(raw, "matcher")?,
        })
    }

    fn common(&self) -> &CommonSettings {
        &self.common
    }
}

pub fn spec() -> ServiceSpec {
    ServiceSpec {
        name: "matcher",
        schema: "matching",
        migrations: || MIGRATIONS,
        topology: Topology::new()
            .exchange(exchanges::MATCHING)
            .queue(QueueSpec::new(queues::MATCHER_ACCOUNTS).bind(exchanges::CSCX_ACCOUNTS, "#"))
            .queue(QueueSpec::new(queues::MATCHER_BILLING).bind(exchanges::BILLING, "customer.#")),
    }
}
