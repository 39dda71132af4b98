//! `query-api`: the read API, Stripe connections, billing widget and chat commands; owns the
//! `integration` schema (connections, tokens, audit log).

pub mod app;
pub mod audit;
pub mod auth;
pub mod connections;
pub mod crypto;
pub mod error;
pub mod oauth;
pub mod schema;
pub mod settings;
pub mod stripe_keys;

use contracts::exchanges;
use diesel_migrations::{embed_migrations, EmbeddedMigrations};
use platform::{
    amqp::Topology,
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
        topology: Topology::new().exchange(exchanges::SYNC_JOBS),
    }
}
