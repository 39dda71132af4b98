//! `matcher`: links Stripe customers to CSCX accounts in the `matching` schema.

use contracts::{exchanges, queues};
use diesel_migrations::{embed_migrations, EmbeddedMigrations};
use platform::{
    amqp::{QueueSpec, Topology},
    config::{CommonSettings, HttpSettings},
    service::ServiceSpec,
};
use serde::Deserialize;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/matching");

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    #[serde(flatten)]
    pub common: CommonSettings,
    pub matcher: HttpSettings,
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
