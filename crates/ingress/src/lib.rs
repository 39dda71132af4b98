//! `ingress`: the only internet-facing service. Verifies Stripe webhooks, stores each event
//! once in the `ingress` schema and relays it to the `stripe.events` exchange.

use contracts::exchanges;
use diesel_migrations::{embed_migrations, EmbeddedMigrations};
use platform::{
    amqp::Topology,
    config::{CommonSettings, HttpSettings},
    service::ServiceSpec,
};
use serde::Deserialize;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/ingress");

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    #[serde(flatten)]
    pub common: CommonSettings,
    pub ingress: HttpSettings,
}

pub fn spec() -> ServiceSpec {
    ServiceSpec {
        name: "ingress",
        schema: "ingress",
        migrations: || MIGRATIONS,
        topology: Topology::new().exchange(exchanges::STRIPE_EVENTS),
    }
}
