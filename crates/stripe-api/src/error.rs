//! What can go wrong calling Stripe, sorted by what the caller should do about it.

use stripe::StripeError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The key or token is invalid or revoked (401): stop syncing this connection.
    #[error("{op}: Stripe refused the credentials (401): {message}")]
    Unauthorized { op: &'static str, message: String },
    /// The key lacks a permission (403), e.g. a restricted key without read access.
    #[error("{op}: the key lacks permission (403): {message}")]
    Forbidden { op: &'static str, message: String },
    #[error("{op}: not found (404): {message}")]
    NotFound { op: &'static str, message: String },
    /// Any other 4xx: our request is wrong; retrying cannot help.
    #[error("{op}: Stripe rejected the request ({status}): {message}")]
    Invalid {
        op: &'static str,
        status: u16,
        message: String,
    },
    /// Still throttled, failing or unreachable after every retry.
    #[error("{op}: gave up after {attempts} attempts: {last}")]
    Exhausted {
        op: &'static str,
        attempts: u32,
        last: String,
    },
    /// The answer did not have the documented shape.
    #[error("{op}: unreadable answer: {message}")]
    Decode { op: &'static str, message: String },
    #[error("Stripe client configuration: {0}")]
    Config(String),
}

impl ApiError {
    /// Whether a later attempt (another delivery of the job) may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, ApiError::Exhausted { .. })
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, ApiError::NotFound { .. })
    }
}

/// One attempt's outcome: retry it, or settle with this error.
#[derive(Debug)]
pub(crate) enum Attempt {
    Retry(String),
    Fail(ApiError),
}

pub(crate) fn classify(op: &'static str, err: StripeError) -> Attempt {
    match err {
        StripeError::Stripe(api, status) => {
            let code = api.code.as_ref().map(|c| c.as_str().to_owned());
            let message = api.message.clone().unwrap_or_default();
            let detail = match &code {
                Some(code) => format!("{code}: {message}"),
                None => message.clone(),
            };
            match status {
                429 => Attempt::Retry(format!("429 {detail}")),
                500..=599 => Attempt::Retry(format!("{status} {detail}")),
                // Stripe's lock contention on the object: documented as safe to retry.
                _ if code.as_deref() == Some("lock_timeout") => {
                    Attempt::Retry(format!("{status} {detail}"))
                }
                401 => Attempt::Fail(ApiError::Unauthorized {
                    op,
                    message: detail,
                }),
                403 => Attempt::Fail(ApiError::Forbidden {
                    op,
                    message: detail,
                }),
                404 => Attempt::Fail(ApiError::NotFound {
                    op,
                    message: detail,
                }),
                status => Attempt::Fail(ApiError::Invalid {
                    op,
                    status,
                    message: detail,
                }),
            }
        }
        StripeError::ClientError(message) => Attempt::Retry(message),
        StripeError::Timeout => Attempt::Retry("timed out".into()),
        // A non-2xx answer whose body is not Stripe's error JSON (a proxy's 502 page):
        // the client reports it as a decoding failure of the *error*; treat it like a 5xx.
        StripeError::JSONDeserialize(message) if message.contains("Stripe error") => {
            Attempt::Retry(message)
        }
        StripeError::JSONDeserialize(message) => Attempt::Fail(ApiError::Decode { op, message }),
        StripeError::ConfigError(message) => Attempt::Fail(ApiError::Config(message)),
    }
}
