//! `query-api`: the read API, Stripe connections, billing widget and chat commands; owns the
//! `integration` schema (connections, tokens, audit log).

use contracts::exchanges;
use diesel_migrations::{embed_migrations, EmbeddedMigrations};
use platform::{
    amqp::Topology,
    config::{CommonSettings, HttpSettings},
    service::ServiceSpec,
};
use serde::Deserialize;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/integration");

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    #[serde(flatten)]
    pub common: CommonSettings,
    pub query_api: HttpSettings,
}

pub fn spec() -> ServiceSpec {
    ServiceSpec {
        name: "query-api",
        schema: "integration",
        migrations: || MIGRATIONS,
        topology: Topology::new().exchange(exchanges::SYNC_JOBS),
    }
}
