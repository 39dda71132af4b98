//! `ingress`: the only internet-facing service. Verifies Stripe webhooks, stores each event
//! once in the `ingress` schema and relays it to the `stripe.events` exchange.

pub mod app;
pub mod envelope;
pub mod relay;
pub mod routes;
pub mod schema;
pub mod settings;
pub mod store;

use contracts::exchanges;
use diesel_migrations::{embed_migrations, EmbeddedMigrations};
use platform::{
    amqp::Topology,
    config::CommonSettings,
    service::{ServiceSettings, ServiceSpec},
};

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/ingress");

#[derive(Debug, Clone)]
pub struct Settings {
    pub common: CommonSettings,
    pub ingress: settings::IngressSettings,
}

impl ServiceSettings for Settings {
    fn from_config(raw: &platform::config::Raw) -> anyhow::Result<Self> {
        Ok(Self {
            common: platform::config::section(raw, "")?,
            ingress: platform::config::section::<settings::IngressSettings>(raw, "ingress")?
                .with_env_secrets(),
        })
    }

    fn common(&self) -> &CommonSettings {
        &self.common
    }
}

pub fn spec() -> ServiceSpec {
    ServiceSpec {
        name: "ingress",
        schema: "ingress",
        migrations: || MIGRATIONS,
        topology: Topology::new().exchange(exchanges::STRIPE_EVENTS),
    }
}
