//! `sync-worker`: Stripe's truth into the `billing` schema — backfill, live events,
//! reconciliation, MRR and change history.

use contracts::{exchanges, queues};
use diesel_migrations::{embed_migrations, EmbeddedMigrations};
use platform::{
    amqp::{QueueSpec, Topology},
    config::{CommonSettings, HttpSettings},
    service::ServiceSpec,
};
use serde::Deserialize;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/billing");

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    #[serde(flatten)]
    pub common: CommonSettings,
    pub sync_worker: HttpSettings,
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
