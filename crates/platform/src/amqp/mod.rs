//! RabbitMQ: one connection per process that reconnects after the broker restarts, topology
//! declared on every (re)connect, a publisher that waits for confirms, and a consumer loop that
//! acks only after the handler's effects are committed.

mod broker;
mod consumer;
pub mod dlq;
mod message;
mod publisher;
mod topology;

pub use broker::Broker;
pub use consumer::{run_consumer, ConsumerOptions, HandleError, Handler};
pub use message::{headers, Incoming, Outgoing};
pub use publisher::{PublishError, Publisher};
pub use topology::{QueueSpec, Topology, DEAD_LETTER_EXCHANGE};
