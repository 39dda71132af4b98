//! `sync-worker`: Stripe's truth into the `billing` schema — backfill, live events,
//! reconciliation, MRR and change history.

pub mod backfill;
pub mod credentials;
pub mod mrr_input;
pub mod rows;
pub mod schema;
pub mod store;
pub mod subscriptions;

use contracts::{exchanges, queues};
use diesel_migrations::{embed_migrations, EmbeddedMigrations};
use platform::{
    amqp::{QueueSpec, Topology},
    config::{CommonSettings, HttpSettings},
    service::{ServiceSettings, ServiceSpec},
};

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/billing");

#[derive(Debug, Clone)]
pub struct Settings {
    pub common: CommonSettings,
    pub sync_worker: HttpSettings,
}

impl ServiceSettings for Settings {
    fn from_config(raw: &platform::config::Raw) -> anyhow::Result<Self> {
        Ok(Self {
            common: platform::config::section(raw, "")?,
            sync_worker: platform::config::section(raw, "sync_worker")?,
        })
    }

    fn common(&self) -> &CommonSettings {
        &self.common
    }
}

pub fn spec() -> ServiceSpec {
    ServiceSpec {
        name: "sync-worker",
        schema: "billing",
        migrations: || MIGRATIONS,
        topology: Topology::new()
            .exchange(exchanges::BILLING)
            .queue(QueueSpec::new(queues::SYNC_STRIPE_EVENTS).bind(exchanges::STRIPE_EVENTS, "#"))
            .queue(QueueSpec::new(queues::SYNC_JOBS).bind(exchanges::SYNC_JOBS, "#")),
    }
}
