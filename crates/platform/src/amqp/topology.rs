//! What each service declares: durable topic exchanges, quorum queues with a dead-letter
//! exchange, a `.dlq` queue per work queue, and a delivery limit for poison messages.

use lapin::{
    options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable, LongString},
    Channel, ExchangeKind,
};

/// The direct exchange that receives every dead letter; routing key = the queue it came from.
pub const DEAD_LETTER_EXCHANGE: &str = "dead-letter";

/// A quorum queue and the bindings that feed it.
#[derive(Debug, Clone)]
pub struct QueueSpec {
    /// Logical name (the namespace prefix is added when declared).
    pub name: String,
    /// `(exchange, binding key)` pairs; keys may use topic wildcards.
    pub bindings: Vec<(String, String)>,
}

impl QueueSpec {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            bindings: Vec::new(),
        }
    }

    pub fn bind(mut self, exchange: impl Into<String>, key: impl Into<String>) -> Self {
        self.bindings.push((exchange.into(), key.into()));
        self
    }

    /// Logical name of this queue's dead-letter queue.
    pub fn dlq_name(&self) -> String {
        format!("{}.dlq", self.name)
    }
}

/// Everything one service needs to exist on the broker. Declaring is idempotent, so every
/// replica declares its topology on every (re)connect.
#[derive(Debug, Clone, Default)]
pub struct Topology {
    pub exchanges: Vec<String>,
    pub queues: Vec<QueueSpec>,
}

impl Topology {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn exchange(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        if !self.exchanges.contains(&name) {
            self.exchanges.push(name);
        }
        self
    }

    pub fn queue(mut self, queue: QueueSpec) -> Self {
        for (exchange, _) in &queue.bindings {
            if !self.exchanges.contains(exchange) {
                self.exchanges.push(exchange.clone());
            }
        }
        self.queues.push(queue);
        self
    }

    /// Declares everything under `namespace` on `channel`.
    pub(crate) async fn declare(
        &self,
        channel: &Channel,
        namespace: &str,
        delivery_limit: u32,
    ) -> lapin::Result<()> {
        let ns = |name: &str| format!("{namespace}{name}");
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        channel
            .exchange_declare(
                ns(DEAD_LETTER_EXCHANGE).into(),
                ExchangeKind::Direct,
                durable,
                FieldTable::default(),
            )
            .await?;
        for exchange in &self.exchanges {
            channel
                .exchange_declare(
                    ns(exchange).into(),
                    ExchangeKind::Topic,
                    durable,
                    FieldTable::default(),
                )
                .await?;
        }
        let durable_queue = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        for queue in &self.queues {
            let dlq = ns(&queue.dlq_name());
            channel
                .queue_declare(dlq.clone().into(), durable_queue, quorum_args(None))
                .await?;
            channel
                .queue_bind(
                    dlq.into(),
                    ns(DEAD_LETTER_EXCHANGE).into(),
                    queue.name.clone().into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;

            let mut args = quorum_args(Some(&ns(DEAD_LETTER_EXCHANGE)));
            args.insert("x-dead-letter-routing-key".into(), long_string(&queue.name));
            // The consumer dead-letters with a reason before this; the broker's limit is the
            // backstop for messages that crash their consumer on every delivery.
            args.insert(
                "x-delivery-limit".into(),
                AMQPValue::LongInt(delivery_limit.saturating_add(2) as i32),
            );
            channel
                .queue_declare(ns(&queue.name).into(), durable_queue, args)
                .await?;
            for (exchange, key) in &queue.bindings {
                channel
                    .queue_bind(
                        ns(&queue.name).into(),
                        ns(exchange).into(),
                        key.clone().into(),
                        QueueBindOptions::default(),
                        FieldTable::default(),
                    )
                    .await?;
            }
        }
        Ok(())
    }
}

fn long_string(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s.as_bytes().to_vec()))
}

fn quorum_args(dead_letter_exchange: Option<&str>) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), long_string("quorum"));
    if let Some(dlx) = dead_letter_exchange {
        args.insert("x-dead-letter-exchange".into(), long_string(dlx));
        // At-least-once dead-lettering: the broker keeps a message until the DLQ confirms it.
        args.insert(
            "x-dead-letter-strategy".into(),
            long_string("at-least-once"),
        );
        args.insert("x-overflow".into(), long_string("reject-publish"));
    }
    args
}
