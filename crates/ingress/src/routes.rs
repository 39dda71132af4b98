//! `POST /api/integrations/stripe/webhook` and `/webhook/connect`: thin handlers over the
//! verifier, the envelope parser and the event store.

use std::{sync::Arc, time::Duration};

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse, ResponseError};
use domain::webhook_signature::{SignatureError, Verifier};
use futures_util::StreamExt as _;

use crate::{
    envelope::{self, EnvelopeError},
    store::{EventStore, NewEvent, Stored},
};

/// Everything a webhook request needs; `store` is set once Postgres is reachable.
pub struct WebhookState {
    pub platform: Verifier,
    pub connect: Verifier,
    pub default_tenant: String,
    pub max_body_bytes: usize,
    pub body_read_timeout: Duration,
    pub store: std::sync::OnceLock<EventStore>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Platform,
    Connect,
}

impl Endpoint {
    fn as_str(self) -> &'static str {
        match self {
            Self::Platform => "platform",
            Self::Connect => "connect",
        }
    }
}

/// What a refused webhook is answered with. Messages are short and never echo the body.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("content type must be application/json")]
    ContentType,
    #[error("body larger than the limit")]
    TooLarge,
    #[error("body not received in time")]
    Timeout,
    #[error("body could not be read")]
    Incomplete,
    #[error("{0}")]
    Signature(#[from] SignatureError),
    #[error("malformed event: {0}")]
    Envelope(#[from] EnvelopeError),
    #[error("temporarily unable to store the event; retry")]
    Unavailable,
}

impl WebhookError {
    fn reason(&self) -> &'static str {
        match self {
            Self::ContentType => "content_type",
            Self::TooLarge => "too_large",
            Self::Timeout => "timeout",
            Self::Incomplete => "incomplete_body",
            Self::Signature(e) => e.reason(),
            Self::Envelope(_) => "malformed_event",
            Self::Unavailable => "unavailable",
        }
    }
}

impl ResponseError for WebhookError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::ContentType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Timeout => StatusCode::REQUEST_TIMEOUT,
            Self::Signature(_) | Self::Envelope(_) | Self::Incomplete => StatusCode::BAD_REQUEST,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code()).json(
            serde_json::json!({ "error": { "code": self.reason(), "message": self.to_string() } }),
        )
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/api/integrations/stripe/webhook",
        web::post().to(platform_webhook),
    )
    .route(
        "/api/integrations/stripe/webhook/connect",
        web::post().to(connect_webhook),
    );
}

async fn platform_webhook(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<Arc<WebhookState>>,
) -> Result<HttpResponse, WebhookError> {
    receive(Endpoint::Platform, req, body, &state).await
}

async fn connect_webhook(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<Arc<WebhookState>>,
) -> Result<HttpResponse, WebhookError> {
    receive(Endpoint::Connect, req, body, &state).await
}

#[tracing::instrument(name = "webhook", skip_all, fields(endpoint = endpoint.as_str(), event_id, event_type))]
async fn receive(
    endpoint: Endpoint,
    req: HttpRequest,
    body: web::Payload,
    state: &WebhookState,
) -> Result<HttpResponse, WebhookError> {
    metrics::counter!("ingress_webhooks_received_total", "endpoint" => endpoint.as_str())
        .increment(1);
    let outcome = accept(endpoint, &req, body, state).await;
    match &outcome {
        Ok(Stored::New) => {}
        Ok(Stored::Duplicate) => metrics::counter!("ingress_webhooks_duplicate_total").increment(1),
        Err(e) => {
            tracing::info!(reason = e.reason(), "webhook refused");
            metrics::counter!("ingress_webhooks_rejected_total", "reason" => e.reason())
                .increment(1);
        }
    }
    let stored = outcome?;
    Ok(HttpResponse::Ok()
        .json(serde_json::json!({ "received": true, "duplicate": stored == Stored::Duplicate })))
}

async fn accept(
    endpoint: Endpoint,
    req: &HttpRequest,
    body: web::Payload,
    state: &WebhookState,
) -> Result<Stored, WebhookError> {
    let json = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(WebhookError::ContentType);
    }
    let declared = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > state.max_body_bytes) {
        return Err(WebhookError::TooLarge);
    }
    let bytes = read_body(body, state.max_body_bytes, state.body_read_timeout).await?;
    let header = req
        .headers()
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    let verifier = match endpoint {
        Endpoint::Platform => &state.platform,
        Endpoint::Connect => &state.connect,
    };
    let verified = verifier.verify(header, bytes, chrono::Utc::now().timestamp())?;
    let envelope = envelope::parse(&verified)?;
    let span = tracing::Span::current();
    span.record("event_id", envelope.event_id.as_str());
    span.record("event_type", envelope.event_type.as_str());

    let tenant_id = match (endpoint, &envelope.account) {
        (Endpoint::Platform, None) => Some(state.default_tenant.clone()),
        // Connect events are routed by account; the sync worker resolves the account's
        // connection and tenant. Counted so that unknown accounts are visible.
        _ => {
            metrics::counter!("ingress_events_connect_total").increment(1);
            None
        }
    };
    let store = state.store.get().ok_or(WebhookError::Unavailable)?;
    let payload = String::from_utf8(verified.into_bytes()).map_err(|_| EnvelopeError::NotJson)?;
    let event = NewEvent {
        event_id: envelope.event_id,
        tenant_id,
        endpoint: endpoint.as_str().to_string(),
        account: envelope.account,
        event_type: envelope.event_type,
        created: chrono::DateTime::from_timestamp(envelope.created, 0)
            .ok_or(EnvelopeError::Field("created"))?,
        livemode: envelope.livemode,
        api_version: envelope.api_version,
        payload,
        traceparent: platform::telemetry::current_traceparent(),
    };
    store
        .store(event)
        .await
        .map_err(|_| WebhookError::Unavailable)
}

/// Reads the body up to `limit` bytes, giving up after `timeout` (slow or endless bodies).
async fn read_body(
    mut body: web::Payload,
    limit: usize,
    timeout: Duration,
) -> Result<Vec<u8>, WebhookError> {
    let read = async {
        let mut bytes = Vec::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|_| WebhookError::Incomplete)?;
            if bytes.len() + chunk.len() > limit {
                return Err(WebhookError::TooLarge);
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| WebhookError::Timeout)?
}
