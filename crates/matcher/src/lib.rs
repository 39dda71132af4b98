//! `matcher`: links Stripe customers to CSCX accounts in the `matching` schema.
//!
//! Accounts (`cscx.accounts`), customers (`billing` `customer.*`) and people's decisions
//! (`matching` `decision.requested`) are stored by [`intake`]; [`rematch`] decides the
//! affected customers with the rules of [`domain::matching`] and the precedence of
//! [`decide`], and publishes every link change on `matching` through the outbox ([`facts`]).

pub mod decide;
pub mod evaluation;
pub mod facts;
pub mod import;
pub mod intake;
pub mod rematch;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;

use contracts::{exchanges, queues};
use diesel_migrations::{embed_migrations, EmbeddedMigrations};
use domain::matching::MatchConfig;
use platform::{
    amqp::{run_consumer, ConsumerOptions, Publisher, QueueSpec, Topology},
    config::CommonSettings,
    service::{ServiceSettings, ServiceSpec, StartConsumers},
};
use serde::Deserialize;
use tokio::sync::Notify;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/matching");

/// The `[matcher]` section.
#[derive(Debug, Clone, Deserialize)]
pub struct MatcherSettings {
    pub listen: SocketAddr,
    /// `[matcher.rules]`: metadata keys, confidences, thresholds (see `domain::matching`).
    #[serde(default)]
    pub rules: MatchConfig,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub common: CommonSettings,
    pub matcher: MatcherSettings,
}

impl ServiceSettings for Settings {
    fn from_config(raw: &platform::config::Raw) -> anyhow::Result<Self> {
        let matcher: MatcherSettings = platform::config::section(raw, "matcher")?;
        matcher
            .rules
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid configuration: matcher.rules.{}", e))?;
        Ok(Self {
            common: platform::config::section(raw, "")?,
            matcher,
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
            .queue(QueueSpec::new(queues::MATCHER_BILLING).bind(exchanges::BILLING, "customer.#"))
            .queue(
                QueueSpec::new(queues::MATCHER_DECISIONS)
                    .bind(exchanges::MATCHING, "decision.requested"),
            ),
    }
}

/// The consumers, the re-matcher and the outbox relay.
pub fn consumers(settings: &Settings) -> StartConsumers {
    let settings = settings.clone();
    Box::new(move |pool, broker, cancel| {
        let amqp = &settings.common.amqp;
        let relay = facts::outbox().relay(pool.clone(), Arc::new(Publisher::new(broker.clone())));
        let wake = Arc::new(Notify::new());
        let rematcher = rematch::Rematcher::new(
            pool.clone(),
            settings.matcher.rules.clone(),
            wake.clone(),
            relay.wake.clone(),
        );
        let accounts = Arc::new(intake::Accounts {
            pool: pool.clone(),
            wake: wake.clone(),
        });
        let customers = Arc::new(intake::Customers {
            pool: pool.clone(),
            wake: wake.clone(),
        });
        let decisions = Arc::new(intake::Decisions { pool, wake });
        vec![
            tokio::spawn(relay.run(cancel.clone())),
            tokio::spawn(rematcher.run(cancel.clone())),
            tokio::spawn(run_consumer(
                broker.clone(),
                ConsumerOptions::from_settings(queues::MATCHER_ACCOUNTS, amqp),
                accounts,
                cancel.clone(),
            )),
            tokio::spawn(run_consumer(
                broker.clone(),
                ConsumerOptions::from_settings(queues::MATCHER_BILLING, amqp),
                customers,
                cancel.clone(),
            )),
            tokio::spawn(run_consumer(
                broker,
                ConsumerOptions::from_settings(queues::MATCHER_DECISIONS, amqp),
                decisions,
                cancel,
            )),
        ]
    })
}
