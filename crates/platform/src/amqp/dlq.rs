//! Dead-letter queue tools for operators (`billingctl dlq …`): inspect and replay.

use lapin::options::{BasicAckOptions, BasicGetOptions, BasicNackOptions};

use super::{headers, Broker, Incoming, Outgoing, Publisher};

/// A dead letter as an operator sees it.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub message_id: String,
    pub message_type: String,
    pub tenant_id: Option<String>,
    pub reason: String,
    pub original_exchange: String,
    pub original_routing_key: String,
}

fn describe(message: &Incoming) -> DeadLetter {
    DeadLetter {
        message_id: message.message_id.clone(),
        message_type: message.message_type.clone(),
        tenant_id: message.tenant_id.clone(),
        reason: message
            .header(headers::DEAD_LETTER_REASON)
            .unwrap_or("(dead-lettered by the broker)")
            .to_string(),
        original_exchange: message
            .header(headers::ORIGINAL_EXCHANGE)
            .unwrap_or_default()
            .to_string(),
        original_routing_key: message
            .header(headers::ORIGINAL_ROUTING_KEY)
            .unwrap_or(&message.routing_key)
            .to_string(),
    }
}

/// Lists up to `limit` dead letters of `queue` (logical name of the work queue) without
/// removing them.
pub async fn peek(broker: &Broker, queue: &str, limit: usize) -> anyhow::Result<Vec<DeadLetter>> {
    let conn = broker.connection().await?;
    let channel = conn.create_channel().await?;
    let mut out = Vec::new();
    while out.len() < limit {
        let Some(got) = channel
            .basic_get(
                broker.name(&format!("{queue}.dlq")).into(),
                BasicGetOptions::default(),
            )
            .await?
        else {
            break;
        };
        out.push(describe(&Incoming::from_delivery(&got.delivery)));
    }
    // Closing the channel returns every unacked message to the DLQ, in order.
    let _ = channel.close(200, "peek done".into()).await;
    Ok(out)
}

/// Republishes up to `limit` dead letters of `queue` to where they were first published,
/// each confirmed before its dead letter is acked. Returns how many were replayed.
pub async fn replay(
    broker: &std::sync::Arc<Broker>,
    queue: &str,
    limit: usize,
) -> anyhow::Result<usize> {
    let publisher = Publisher::new(broker.clone());
    let conn = broker.connection().await?;
    let channel = conn.create_channel().await?;
    let mut replayed = 0;
    while replayed < limit {
        let Some(got) = channel
            .basic_get(
                broker.name(&format!("{queue}.dlq")).into(),
                BasicGetOptions::default(),
            )
            .await?
        else {
            break;
        };
        let message = Incoming::from_delivery(&got.delivery);
        let dead = describe(&message);
        if dead.original_exchange.is_empty() {
            // Without its origin we cannot replay it; leave it for a person.
            got.delivery
                .acker
                .nack(BasicNackOptions {
                    requeue: true,
                    ..Default::default()
                })
                .await?;
            anyhow::bail!(
                "dead letter {} has no {} header",
                dead.message_id,
                headers::ORIGINAL_EXCHANGE
            );
        }
        let extra = message
            .headers
            .iter()
            .filter(|(k, _)| {
                !k.starts_with("x-")
                    && !matches!(k.as_str(), headers::TENANT_ID | headers::TRACEPARENT)
            })
            .cloned()
            .collect();
        let again = Outgoing {
            exchange: dead.original_exchange.clone(),
            routing_key: dead.original_routing_key.clone(),
            message_id: message.message_id.clone(),
            message_type: message.message_type.clone(),
            content_type: message.content_type.clone(),
            tenant_id: message.tenant_id.clone().unwrap_or_default(),
            traceparent: message.traceparent.clone(),
            extra_headers: extra,
            payload: message.payload.clone(),
        };
        match publisher.publish(&again).await {
            Ok(()) => {
                got.delivery.acker.ack(BasicAckOptions::default()).await?;
                replayed += 1;
            }
            Err(e) => {
                got.delivery
                    .acker
                    .nack(BasicNackOptions {
                        requeue: true,
                        ..Default::default()
                    })
                    .await?;
                return Err(e.into());
            }
        }
    }
    let _ = channel.close(200, "replay done".into()).await;
    Ok(replayed)
}
