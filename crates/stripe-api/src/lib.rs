//! Stripe's REST API for our services: async-stripe pointed at a configurable base URL
//! (Stripe or the fake), behind a token-bucket rate limit and retries with backoff.

mod client;
mod error;
pub mod pages;

pub use client::{ApiConfig, StripeApi, Usage, LIVE_RATE, TEST_RATE};
pub use error::ApiError;

pub use stripe;
pub use stripe_billing;
pub use stripe_client_core;
pub use stripe_core;
pub use stripe_payment;
pub use stripe_product;
pub use stripe_shared;
pub use stripe_types;
pub mod raw;
