//! The consumer loop: bounded prefetch, ack only after the handler's transaction committed,
//! in-process retries of transient failures, dead-lettering with a reason, reconnect after
//! broker restarts, and a drain of in-flight messages on shutdown.

use std::{future::Future, sync::Arc, time::Duration};

use futures_util::StreamExt as _;
use lapin::{
    options::{
        BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
    },
    types::FieldTable,
    Acker,
};
use tokio::{sync::Semaphore, task::JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::{headers, Broker, Incoming, Outgoing, Publisher, DEAD_LETTER_EXCHANGE};
use crate::backoff::Backoff;

/// Why a handler did not apply a message.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// Worth retrying: database or broker unavailable, a conflict, a timeout.
    #[error("transient: {0:#}")]
    Transient(anyhow::Error),
    /// Will never succeed: malformed payload, unknown tenant. Dead-lettered at once.
    #[error("permanent: {0:#}")]
    Permanent(anyhow::Error),
}

impl HandleError {
    pub fn transient(e: impl Into<anyhow::Error>) -> Self {
        Self::Transient(e.into())
    }

    pub fn permanent(e: impl Into<anyhow::Error>) -> Self {
        Self::Permanent(e.into())
    }
}

/// Applies one message. It must commit its effects before returning `Ok`, and be idempotent
/// by `message_id` (a message can be delivered again after a crash between commit and ack).
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, message: &Incoming) -> impl Future<Output = Result<(), HandleError>> + Send;
}

#[derive(Debug, Clone)]
pub struct ConsumerOptions {
    /// Logical queue name.
    pub queue: String,
    pub prefetch: u16,
    /// Messages handled at once (≤ prefetch).
    pub concurrency: usize,
    /// In-process retries of a transient failure before the message is requeued.
    pub handler_retries: u32,
    /// Deliveries after which a still-failing message is dead-lettered with its reason.
    pub delivery_limit: u32,
    /// First retry delay; doubles each retry.
    pub retry_base: Duration,
}

impl ConsumerOptions {
    pub fn from_settings(queue: impl Into<String>, settings: &crate::config::AmqpSettings) -> Self {
        Self {
            queue: queue.into(),
            prefetch: settings.prefetch,
            concurrency: settings.prefetch as usize,
            handler_retries: settings.handler_retries,
            delivery_limit: settings.delivery_limit,
            retry_base: Duration::from_millis(100),
        }
    }
}

/// Consumes `options.queue` until `cancel` fires, reconnecting whenever the broker goes away.
/// Returns after in-flight messages have been handled and acked.
pub async fn run_consumer<H: Handler>(
    broker: Arc<Broker>,
    options: ConsumerOptions,
    handler: Arc<H>,
    cancel: CancellationToken,
) {
    let dead_letters = Arc::new(Publisher::new(broker.clone()));
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
    while !cancel.is_cancelled() {
        match consume_session(&broker, &options, &handler, &dead_letters, &cancel).await {
            Ok(()) => backoff.reset(),
            Err(error) => {
                let delay = backoff.next_delay();
                tracing::warn!(queue = %options.queue, %error, retry_in_ms = delay.as_millis() as u64, "consumer lost the broker; reconnecting");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = cancel.cancelled() => {}
                }
            }
        }
    }
    tracing::info!(queue = %options.queue, "consumer stopped");
}

/// One connection's worth of consuming. `Ok` means stopped by `cancel`.
async fn consume_session<H: Handler>(
    broker: &Arc<Broker>,
    options: &ConsumerOptions,
    handler: &Arc<H>,
    dead_letters: &Arc<Publisher>,
    cancel: &CancellationToken,
) -> anyhow::Result<()> {
    let conn = tokio::select! {
        conn = broker.connection() => conn?,
        _ = cancel.cancelled() => return Ok(()),
    };
    let channel = conn.create_channel().await?;
    channel
        .basic_qos(options.prefetch, BasicQosOptions::default())
        .await?;
    let tag = format!("{}-{}", options.queue, uuid::Uuid::new_v4().simple());
    let mut consumer = channel
        .basic_consume(
            broker.name(&options.queue).into(),
            tag.clone().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;

    let slots = Arc::new(Semaphore::new(options.concurrency.max(1)));
    let mut in_flight = JoinSet::new();
    let outcome = loop {
        while in_flight.try_join_next().is_some() {}
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => permit?,
            _ = cancel.cancelled() => break Ok(()),
        };
        let next = tokio::select! {
            next = consumer.next() => next,
            _ = cancel.cancelled() => break Ok(()),
        };
        let delivery = match next {
            Some(Ok(delivery)) => delivery,
            Some(Err(e)) => break Err(anyhow::Error::from(e)),
            None => break Err(anyhow::anyhow!("consumer stream ended")),
        };
        let message = Incoming::from_delivery(&delivery);
        let acker = Ack(delivery.acker);
        let (handler, dead_letters, options) =
            (handler.clone(), dead_letters.clone(), options.clone());
        in_flight.spawn(async move {
            process(message, acker, &*handler, &dead_letters, &options).await;
            drop(permit);
        });
    };
    if cancel.is_cancelled() {
        // Stop deliveries first, then let what we hold finish and be acked.
        let _ = channel
            .basic_cancel(tag.into(), BasicCancelOptions::default())
            .await;
    }
    while in_flight.join_next().await.is_some() {}
    let _ = channel.close(200, "consumer done".into()).await;
    outcome
}

/// Owns a delivery's acknowledgement; each method consumes it, so a message cannot be
/// acknowledged twice.
struct Ack(Acker);

impl Ack {
    async fn ack(self) {
        if let Err(error) = self.0.ack(BasicAckOptions::default()).await {
            // The broker will redeliver; the handler's idempotency makes that harmless.
            tracing::warn!(%error, "ack failed; message will be redelivered");
        }
    }

    async fn requeue(self) {
        let _ = self
            .0
            .nack(BasicNackOptions {
                requeue: true,
                ..Default::default()
            })
            .await;
    }
}

async fn process<H: Handler>(
    message: Incoming,
    ack: Ack,
    handler: &H,
    dead_letters: &Publisher,
    options: &ConsumerOptions,
) {
    let span = tracing::info_span!(
        "consume",
        queue = %options.queue,
        message_id = %message.message_id,
        message_type = %message.message_type,
        tenant_id = message.tenant_id.as_deref().unwrap_or(""),
    );
    crate::telemetry::set_remote_parent(&span, message.traceparent.as_deref());
    async {
        let mut delay = options.retry_base;
        let mut retries = 0;
        loop {
            let error = match handler.handle(&message).await {
                Ok(()) => {
                    ack.ack().await;
                    metrics::counter!("amqp_consumed_total", "queue" => options.queue.clone(), "outcome" => "ok").increment(1);
                    return;
                }
                Err(error) => error,
            };
            match error {
                HandleError::Permanent(reason) => {
                    tracing::warn!(reason = %format!("{reason:#}"), "poison message; dead-lettering");
                    return dead_letter(message, ack, dead_letters, options, &format!("{reason:#}")).await;
                }
                HandleError::Transient(reason) if retries < options.handler_retries => {
                    retries += 1;
                    tracing::info!(reason = %format!("{reason:#}"), retries, "transient failure; retrying");
                    tokio::time::sleep(delay).await;
                    delay = delay.saturating_mul(2);
                }
                HandleError::Transient(reason) => {
                    if message.delivery_count + 1 >= options.delivery_limit {
                        tracing::warn!(reason = %format!("{reason:#}"), "delivery limit reached; dead-lettering");
                        return dead_letter(message, ack, dead_letters, options, &format!("{reason:#}")).await;
                    }
                    tracing::warn!(reason = %format!("{reason:#}"), "still failing; requeueing");
                    metrics::counter!("amqp_consumed_total", "queue" => options.queue.clone(), "outcome" => "requeued").increment(1);
                    return ack.requeue().await;
                }
            }
        }
    }
    .instrument(span)
    .await
}

/// Copies the message to the dead-letter exchange with the reason, then acks the original.
/// If the copy cannot be confirmed the original is requeued instead: nothing is lost.
async fn dead_letter(
    message: Incoming,
    ack: Ack,
    publisher: &Publisher,
    options: &ConsumerOptions,
    reason: &str,
) {
    let mut extra: Vec<(String, String)> = message
        .headers
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                headers::TENANT_ID | headers::TRACEPARENT | headers::DELIVERY_COUNT
            )
        })
        .cloned()
        .collect();
    let reason: String = reason.chars().take(1000).collect();
    extra.retain(|(k, _)| {
        !matches!(
            k.as_str(),
            headers::DEAD_LETTER_REASON
                | headers::DEAD_LETTER_QUEUE
                | headers::ORIGINAL_EXCHANGE
                | headers::ORIGINAL_ROUTING_KEY
        )
    });
    let broker = publisher.broker();
    let namespace = &broker.settings().namespace;
    let original_exchange = message
        .exchange
        .strip_prefix(namespace.as_str())
        .unwrap_or(&message.exchange);
    extra.push((headers::DEAD_LETTER_REASON.into(), reason));
    extra.push((headers::DEAD_LETTER_QUEUE.into(), options.queue.clone()));
    extra.push((
        headers::ORIGINAL_EXCHANGE.into(),
        original_exchange.to_string(),
    ));
    extra.push((
        headers::ORIGINAL_ROUTING_KEY.into(),
        message.routing_key.clone(),
    ));
    let copy = Outgoing {
        exchange: DEAD_LETTER_EXCHANGE.into(),
        routing_key: options.queue.clone(),
        message_id: message.message_id.clone(),
        message_type: message.message_type.clone(),
        content_type: message.content_type.clone(),
        tenant_id: message.tenant_id.clone().unwrap_or_default(),
        traceparent: message.traceparent.clone(),
        extra_headers: extra,
        payload: message.payload,
    };
    match publisher.publish(&copy).await {
        Ok(()) => {
            ack.ack().await;
            metrics::counter!("amqp_dead_lettered_total", "queue" => options.queue.clone())
                .increment(1);
        }
        Err(error) => {
            tracing::error!(%error, "could not dead-letter; requeueing");
            ack.requeue().await;
        }
    }
}
