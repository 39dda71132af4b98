//! The one error type at the HTTP edge: `{"error": {"code", "message"}}` with the right status.
//! Internal causes are logged, never returned.

use actix_web::{http::StatusCode, HttpResponse, ResponseError};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("authentication required")]
    Unauthenticated,
    #[error("this action needs the {0} role")]
    Forbidden(&'static str),
    #[error("not found")]
    NotFound,
    /// A 404 that says what was not found (e.g. an account name typed in the chat).
    #[error("{0}")]
    NotFoundWith(String),
    #[error("{0}")]
    Conflict(String),
    #[error("temporarily unavailable; retry")]
    Unavailable,
    /// Over the per-token rate limit; retry after this many seconds.
    #[error("too many requests for this token; retry in {0} s")]
    RateLimited(u64),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound | Self::NotFoundWith(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::Unavailable => "unavailable",
            Self::RateLimited(_) => "rate_limited",
            Self::Internal(_) => "internal",
        }
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        Self::Internal(e.into())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound | Self::NotFoundWith(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Internal(cause) = self {
            tracing::error!(error = %format!("{cause:#}"), "request failed");
        }
        HttpResponse::build(self.status_code()).json(
            serde_json::json!({ "error": { "code": self.code(), "message": self.to_string() } }),
        )
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Internal(e.into())
    }
}
