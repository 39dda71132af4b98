//! Messages on the bus and the headers every one of them carries.

use lapin::{
    message::Delivery,
    types::{AMQPValue, FieldTable, LongString},
    BasicProperties,
};

/// Header names shared by every service.
pub mod headers {
    /// The tenant (CSCX organisation) the message belongs to.
    pub const TENANT_ID: &str = "tenant_id";
    /// W3C trace context, so one Stripe event is one trace across services.
    pub const TRACEPARENT: &str = "traceparent";
    /// Why the consumer dead-lettered the message.
    pub const DEAD_LETTER_REASON: &str = "x-dead-letter-reason";
    /// The queue (consumer) that gave up on the message.
    pub const DEAD_LETTER_QUEUE: &str = "x-dead-letter-queue";
    /// Exchange and routing key the message was first published with (for DLQ replay).
    pub const ORIGINAL_EXCHANGE: &str = "x-original-exchange";
    pub const ORIGINAL_ROUTING_KEY: &str = "x-original-routing-key";
    /// Set by quorum queues: how many times the message was delivered before.
    pub const DELIVERY_COUNT: &str = "x-delivery-count";
}

/// A message to publish. `exchange` is logical; the publisher adds the namespace.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub exchange: String,
    pub routing_key: String,
    /// Idempotency key: consumers record it and skip a message they have already applied.
    pub message_id: String,
    /// Message type, e.g. `billing.v1.InvoiceUpdated`.
    pub message_type: String,
    pub content_type: String,
    pub tenant_id: String,
    pub traceparent: Option<String>,
    pub extra_headers: Vec<(String, String)>,
    pub payload: Vec<u8>,
}

impl Outgoing {
    /// A protobuf message with the current span's trace context.
    pub fn protobuf(
        exchange: impl Into<String>,
        routing_key: impl Into<String>,
        message_id: impl Into<String>,
        message_type: impl Into<String>,
        tenant_id: impl Into<String>,
        payload: Vec<u8>,
    ) -> Self {
        Self {
            exchange: exchange.into(),
            routing_key: routing_key.into(),
            message_id: message_id.into(),
            message_type: message_type.into(),
            content_type: "application/x-protobuf".into(),
            tenant_id: tenant_id.into(),
            traceparent: crate::telemetry::current_traceparent(),
            extra_headers: Vec::new(),
            payload,
        }
    }

    pub(crate) fn properties(&self) -> BasicProperties {
        let mut table = FieldTable::default();
        table.insert(headers::TENANT_ID.into(), long_string(&self.tenant_id));
        if let Some(tp) = &self.traceparent {
            table.insert(headers::TRACEPARENT.into(), long_string(tp));
        }
        for (k, v) in &self.extra_headers {
            table.insert(k.clone().into(), long_string(v));
        }
        BasicProperties::default()
            .with_message_id(self.message_id.clone().into())
            .with_type(self.message_type.clone().into())
            .with_content_type(self.content_type.clone().into())
            .with_delivery_mode(2)
            .with_timestamp(chrono::Utc::now().timestamp().max(0) as u64)
            .with_headers(table)
    }
}

/// A delivered message, decoded from AMQP properties into plain fields.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub exchange: String,
    pub routing_key: String,
    pub message_id: String,
    pub message_type: String,
    pub content_type: String,
    pub tenant_id: Option<String>,
    pub traceparent: Option<String>,
    /// Previous deliveries of this message (0 on the first).
    pub delivery_count: u32,
    pub redelivered: bool,
    pub headers: Vec<(String, String)>,
    pub payload: Vec<u8>,
}

impl Incoming {
    pub(crate) fn from_delivery(delivery: &Delivery) -> Self {
        let props = &delivery.properties;
        let headers: Vec<(String, String)> = props
            .headers()
            .as_ref()
            .map(|t| {
                t.inner()
                    .iter()
                    .filter_map(|(k, v)| value_to_string(v).map(|v| (k.as_str().to_string(), v)))
                    .collect()
            })
            .unwrap_or_default();
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let delivery_count = header(headers::DELIVERY_COUNT)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Self {
            exchange: delivery.exchange.as_str().to_string(),
            routing_key: delivery.routing_key.as_str().to_string(),
            message_id: props
                .message_id()
                .as_ref()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            message_type: props
                .kind()
                .as_ref()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            content_type: props
                .content_type()
                .as_ref()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            tenant_id: header(headers::TENANT_ID),
            traceparent: header(headers::TRACEPARENT),
            delivery_count,
            redelivered: delivery.redelivered,
            headers,
            payload: delivery.data.clone(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The tenant the message belongs to, validated; a message without a valid `tenant_id`
    /// header is permanent failure (dead-lettered with the reason): retrying cannot fix it.
    pub fn tenant(&self) -> Result<domain::TenantId, super::HandleError> {
        let raw = self.tenant_id.as_deref().unwrap_or_default();
        domain::TenantId::parse(raw).map_err(|e| {
            super::HandleError::permanent(anyhow::anyhow!(
                "message {} has no valid tenant_id header ({raw:?}: {e})",
                self.message_id
            ))
        })
    }

    /// The protobuf payload as `M`; an undecodable payload is a permanent failure.
    pub fn decode<M: prost::Message + Default>(&self) -> Result<M, super::HandleError> {
        M::decode(self.payload.as_slice()).map_err(|e| {
            super::HandleError::permanent(anyhow::anyhow!(
                "message {} is not a valid {}: {e}",
                self.message_id,
                std::any::type_name::<M>()
            ))
        })
    }
}

fn long_string(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s.as_bytes().to_vec()))
}

fn value_to_string(value: &AMQPValue) -> Option<String> {
    Some(match value {
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        AMQPValue::ShortString(s) => s.as_str().to_string(),
        AMQPValue::LongLongInt(n) => n.to_string(),
        AMQPValue::LongInt(n) => n.to_string(),
        AMQPValue::LongUInt(n) => n.to_string(),
        AMQPValue::ShortInt(n) => n.to_string(),
        AMQPValue::ShortUInt(n) => n.to_string(),
        AMQPValue::ShortShortInt(n) => n.to_string(),
        AMQPValue::ShortShortUInt(n) => n.to_string(),
        AMQPValue::Boolean(b) => b.to_string(),
        AMQPValue::Timestamp(t) => t.to_string(),
        _ => return None,
    })
}
