//! The process's broker connection. lapin does not reconnect by itself: whoever needs the
//! connection calls [`Broker::connection`], which reconnects (and redeclares the topology)
//! when the previous connection has died.

use std::{
    sync::{Arc, RwLock},
    time::Duration,
};

use lapin::{Connection, ConnectionProperties};
use tokio_util::sync::CancellationToken;

use super::Topology;
use crate::{backoff::Backoff, config::AmqpSettings};

/// How long a graceful close waits for the broker's close-ok.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);

/// How long one connection attempt (TCP, AMQP handshake, topology) may take. lapin has no
/// timeout of its own, and its connect occasionally never completes even against a closed
/// port (seen here about once in 100,000 attempts under load): an unbounded attempt would
/// wedge the retry loop, and with it start-up and shutdown.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Broker {
    settings: AmqpSettings,
    topology: Topology,
    current: RwLock<Option<Arc<Connection>>>,
    connecting: tokio::sync::Mutex<()>,
}

impl Broker {
    pub fn new(settings: AmqpSettings, topology: Topology) -> Arc<Self> {
        Arc::new(Self {
            settings,
            topology,
            current: RwLock::new(None),
            connecting: tokio::sync::Mutex::new(()),
        })
    }

    pub fn settings(&self) -> &AmqpSettings {
        &self.settings
    }

    /// The physical name of a logical exchange or queue.
    pub fn name(&self, logical: &str) -> String {
        format!("{}{}", self.settings.namespace, logical)
    }

    /// How this process shows up in `rabbitmqctl list_connections client_properties`.
    pub fn connection_name(&self) -> String {
        let program = std::env::current_exe()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "billing".into());
        format!(
            "{}{}-{}",
            self.settings.namespace,
            program,
            std::process::id()
        )
    }

    /// Whether the current connection is up (for `/readyz`).
    pub fn is_connected(&self) -> bool {
        self.live().is_some()
    }

    fn live(&self) -> Option<Arc<Connection>> {
        let guard = self.current.read().unwrap_or_else(|e| e.into_inner());
        guard.as_ref().filter(|c| c.status().connected()).cloned()
    }

    /// The live connection, connecting once if there is none.
    pub async fn connection(&self) -> lapin::Result<Arc<Connection>> {
        if let Some(conn) = self.live() {
            return Ok(conn);
        }
        let _one_at_a_time = self.connecting.lock().await;
        if let Some(conn) = self.live() {
            return Ok(conn);
        }
        let conn = tokio::time::timeout(CONNECT_TIMEOUT, self.connect_and_declare())
            .await
            .map_err(|_| {
                lapin::Error::from(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no connection within {} s", CONNECT_TIMEOUT.as_secs()),
                ))
            })??;
        tracing::info!(namespace = %self.settings.namespace, "connected to RabbitMQ");
        metrics::counter!("amqp_connects_total").increment(1);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(conn.clone());
        Ok(conn)
    }

    async fn connect_and_declare(&self) -> lapin::Result<Arc<Connection>> {
        let properties =
            ConnectionProperties::default().with_connection_name(self.connection_name().into());
        let conn = Arc::new(Connection::connect(&self.settings.url, properties).await?);
        let channel = conn.create_channel().await?;
        self.topology
            .declare(
                &channel,
                &self.settings.namespace,
                self.settings.delivery_limit,
            )
            .await?;
        let _ = channel.close(200, "topology declared".into()).await;
        Ok(conn)
    }

    /// Connects, retrying with backoff until it succeeds or `cancel` fires.
    pub async fn connect_with_retry(&self, cancel: &CancellationToken) -> Option<Arc<Connection>> {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        loop {
            let attempt = tokio::select! {
                attempt = self.connection() => attempt,
                _ = cancel.cancelled() => return None,
            };
            match attempt {
                Ok(conn) => return Some(conn),
                Err(error) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64, "RabbitMQ unavailable");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = cancel.cancelled() => return None,
                    }
                }
            }
        }
    }

    /// Closes the connection (graceful shutdown). Bounded: a broker that stopped reading the
    /// socket (resource alarm, network partition) never answers close-ok, and a shutdown must
    /// not outlive the pod's grace period for it.
    pub async fn close(&self) {
        let conn = self
            .current
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(conn) = conn {
            let close = conn.close(200, "shutdown".into());
            if tokio::time::timeout(CLOSE_TIMEOUT, close).await.is_err() {
                tracing::warn!(
                    timeout_ms = CLOSE_TIMEOUT.as_millis() as u64,
                    "RabbitMQ did not confirm the close; leaving the connection to the OS"
                );
            }
        }
    }

    /// Deletes every queue and exchange of this broker's topology (tests clean up after themselves).
    pub async fn delete_topology(&self) -> lapin::Result<()> {
        use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
        let conn = self.connection().await?;
        let channel = conn.create_channel().await?;
        for queue in &self.topology.queues {
            for name in [queue.name.clone(), queue.dlq_name()] {
                channel
                    .queue_delete(self.name(&name).into(), QueueDeleteOptions::default())
                    .await?;
            }
        }
        for exchange in self
            .topology
            .exchanges
            .iter()
            .map(String::as_str)
            .chain([super::DEAD_LETTER_EXCHANGE])
        {
            channel
                .exchange_delete(self.name(exchange).into(), ExchangeDeleteOptions::default())
                .await?;
        }
        let _ = channel.close(200, "cleanup".into()).await;
        Ok(())
    }

    /// Messages waiting in a queue (logical name), e.g. a DLQ's depth.
    pub async fn queue_depth(&self, logical: &str) -> lapin::Result<u32> {
        use lapin::options::QueueDeclareOptions;
        let conn = self.connection().await?;
        let channel = conn.create_channel().await?;
        let queue = channel
            .queue_declare(
                self.name(logical).into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                lapin::types::FieldTable::default(),
            )
            .await?;
        let _ = channel.close(200, "depth".into()).await;
        Ok(queue.message_count())
    }
}
