//! A publisher that reports success only once the broker has confirmed the message.

use std::sync::Arc;

use lapin::{options::BasicPublishOptions, options::ConfirmSelectOptions, Channel, Confirmation};

use super::{Broker, Outgoing};

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("broker unavailable: {0}")]
    Unavailable(#[from] lapin::Error),
    #[error("broker refused the message (nack)")]
    Nacked,
    #[error("no queue is bound for exchange `{exchange}` routing key `{routing_key}`")]
    Unroutable {
        exchange: String,
        routing_key: String,
    },
}

/// Shares one confirm-mode channel between concurrent callers; each caller awaits its own
/// confirmation, so concurrent publishes are pipelined.
pub struct Publisher {
    broker: Arc<Broker>,
    channel: tokio::sync::Mutex<Option<Channel>>,
}

impl Publisher {
    pub fn new(broker: Arc<Broker>) -> Self {
        Self {
            broker,
            channel: tokio::sync::Mutex::new(None),
        }
    }

    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    async fn channel(&self) -> lapin::Result<Channel> {
        let mut guard = self.channel.lock().await;
        if let Some(channel) = guard.as_ref().filter(|c| c.status().connected()) {
            return Ok(channel.clone());
        }
        let conn = self.broker.connection().await?;
        let channel = conn.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        *guard = Some(channel.clone());
        Ok(channel)
    }

    /// Publishes one message and waits for the broker's confirm.
    pub async fn publish(&self, message: &Outgoing) -> Result<(), PublishError> {
        let channel = self.channel().await?;
        let result = Self::send(&channel, &self.broker, message).await;
        if matches!(result, Err(PublishError::Unavailable(_))) {
            self.forget(&channel).await;
        }
        result
    }

    /// Publishes all messages back to back, then waits for every confirm (pipelined).
    /// Fails if any one of them is not confirmed; the caller may republish the whole batch
    /// (consumers deduplicate by `message_id`).
    pub async fn publish_all(&self, messages: &[Outgoing]) -> Result<(), PublishError> {
        if messages.is_empty() {
            return Ok(());
        }
        let channel = self.channel().await?;
        let mut pending = Vec::with_capacity(messages.len());
        for message in messages {
            match Self::start(&channel, &self.broker, message).await {
                Ok(confirm) => pending.push((confirm, message)),
                Err(e) => {
                    self.forget(&channel).await;
                    return Err(e.into());
                }
            }
        }
        let mut first_error = None;
        for (confirm, message) in pending {
            let outcome = match confirm.await {
                Ok(confirmation) => check(confirmation, message),
                Err(e) => Err(PublishError::Unavailable(e)),
            };
            if let Err(e) = outcome {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            None => Ok(()),
            Some(e) => {
                if matches!(e, PublishError::Unavailable(_)) {
                    self.forget(&channel).await;
                }
                Err(e)
            }
        }
    }

    async fn start(
        channel: &Channel,
        broker: &Broker,
        message: &Outgoing,
    ) -> lapin::Result<lapin::PublisherConfirm> {
        channel
            .basic_publish(
                broker.name(&message.exchange).into(),
                message.routing_key.clone().into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                &message.payload,
                message.properties(),
            )
            .await
    }

    async fn send(
        channel: &Channel,
        broker: &Broker,
        message: &Outgoing,
    ) -> Result<(), PublishError> {
        let confirm = Self::start(channel, broker, message).await?;
        let outcome = check(confirm.await?, message);
        let label = if outcome.is_ok() { "ok" } else { "error" };
        metrics::counter!("amqp_published_total", "exchange" => message.exchange.clone(), "outcome" => label).increment(1);
        outcome
    }

    async fn forget(&self, failed: &Channel) {
        let mut guard = self.channel.lock().await;
        if guard.as_ref().is_some_and(|c| c.id() == failed.id()) {
            *guard = None;
        }
    }
}

fn check(confirmation: Confirmation, message: &Outgoing) -> Result<(), PublishError> {
    match confirmation {
        Confirmation::Ack(None) | Confirmation::NotRequested => Ok(()),
        Confirmation::Ack(Some(_returned)) => Err(PublishError::Unroutable {
            exchange: message.exchange.clone(),
            routing_key: message.routing_key.clone(),
        }),
        Confirmation::Nack(_) => Err(PublishError::Nacked),
    }
}
