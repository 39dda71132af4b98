//! `stripe-fake`: a stateful, rate-limited, webhook-sending stand-in for Stripe's API.
//!
//! Start it in-process for tests:
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use stripe_fake::{FakeConfig, FakeServer, SeedOptions};
//! let fake = FakeServer::start(FakeConfig {
//!     rate_limit: 0,
//!     seed: Some(SeedOptions { customers: 50, seed: 7, ..Default::default() }),
//!     ..Default::default()
//! })
//! .await?;
//! let base = fake.base_url(); // "http://127.0.0.1:PORT/"
//! let truth = fake.truth();    // what a correct sync must conclude
//! fake.stop().await;
//! # Ok(()) }
//! ```

pub mod admin;
pub mod api;
pub mod bench;
pub mod config;
pub mod engine;
pub mod error;
pub mod limits;
pub mod model;
pub mod mrr;
pub mod oauth;
pub mod query;
pub mod render;
pub mod rng;
pub mod seed;
pub mod server;
pub mod store;
pub mod webhook;

pub use config::{FakeConfig, WebhookConfig};
pub use error::ApiError;
pub use model::API_VERSION;
pub use seed::{generate, generate_with, SeedOptions, Truth};
pub use server::{App, FakeServer, SharedState};
pub use store::State;
pub use webhook::{sign, signature_header};
