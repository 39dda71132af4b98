//! `sync-worker`: Stripe's truth into the `billing` schema — backfill, live events,
//! reconciliation, MRR and change history.

pub mod announce;
pub mod backfill;
pub mod connections;
pub mod credentials;
pub mod disputes;
pub mod events;
pub mod facts;
pub mod jobs;
pub mod mrr_input;
pub mod reconcile;
pub mod rows;
pub mod scheduler;
pub mod schema;
pub mod settings;
pub mod store;
pub mod subscriptions;

use std::sync::Arc;

use contracts::{exchanges, queues};
use diesel_migrations::{embed_migrations, EmbeddedMigrations};
use platform::{
    amqp::{run_consumer, ConsumerOptions, Publisher, QueueSpec, Topology},
    config::CommonSettings,
    crypto::Sealer,
    service::{ServiceSettings, ServiceSpec, StartConsumers},
};

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/billing");

#[derive(Debug, Clone)]
pub struct Settings {
    pub common: CommonSettings,
    pub sync_worker: settings::SyncWorkerSettings,
}

impl ServiceSettings for Settings {
    fn from_config(raw: &platform::config::Raw) -> anyhow::Result<Self> {
        let sync_worker =
            platform::config::section::<settings::SyncWorkerSettings>(raw, "sync_worker")?
                .with_env();
        sync_worker.validate()?;
        Ok(Self {
            common: platform::config::section(raw, "")?,
            sync_worker,
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

/// The worker's consumers (live events, jobs), the facts relay and the scheduler.
pub fn consumers(settings: &Settings, sealer: Arc<Sealer>) -> StartConsumers {
    let settings = settings.clone();
    Box::new(move |pool, broker, cancel| {
        let connections = Arc::new(connections::Connections::new(
            pool.clone(),
            sealer,
            settings.sync_worker.stripe_api_base.clone(),
            settings.sync_worker.requests_per_second,
        ));
        let relay = facts::outbox().relay(pool.clone(), Arc::new(Publisher::new(broker.clone())));
        let wake = relay.wake.clone();
        let amqp = &settings.common.amqp;
        let events = Arc::new(events::EventApplier {
            pool: pool.clone(),
            connections: connections.clone(),
            wake: wake.clone(),
        });
        let scheduler = scheduler::Scheduler {
            pool: pool.clone(),
            connections: connections.clone(),
            publisher: Arc::new(Publisher::new(broker.clone())),
            interval: std::time::Duration::from_secs(settings.sync_worker.reconcile_interval_secs),
        };
        let jobs = Arc::new(jobs::JobRunner {
            pool,
            connections,
            wake,
            cancel: cancel.clone(),
        });
        // Jobs are long (a whole backfill): a few at a time, one message each.
        let mut job_options = ConsumerOptions::from_settings(queues::SYNC_JOBS, amqp);
        job_options.prefetch = 2;
        job_options.concurrency = 2;
        vec![
            tokio::spawn(relay.run(cancel.clone())),
            tokio::spawn(scheduler.run(cancel.clone())),
            tokio::spawn(run_consumer(
                broker.clone(),
                ConsumerOptions::from_settings(queues::SYNC_STRIPE_EVENTS, amqp),
                events,
                cancel.clone(),
            )),
            tokio::spawn(run_consumer(broker, job_options, jobs, cancel)),
        ]
    })
}
