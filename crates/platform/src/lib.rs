//! The shared runtime of every billing service. See `docs/architecture.md`.

pub mod amqp;
pub mod backoff;
pub mod config;
pub mod crypto;
pub mod db;
pub mod health;
pub mod inbox;
pub mod outbox;
pub mod prepared_sql;
pub mod service;
pub mod shutdown;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;

pub use tokio_util::sync::CancellationToken;
