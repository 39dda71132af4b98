//! The one error type at the HTTP edge: `{"error": {"code", "message"}}` with the right status.
//! Internal causes are logged, never returned.

use actix_web::{http::StatusCode, HttpResponse, ResponseError};
use serde::Serialize;

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

/// The machine-readable kind of an error, one per status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: the request is malformed; `message` says what to fix.
    BadRequest,
    /// 401: no valid bearer token.
    Unauthenticated,
    /// 403: the token's roles do not allow this.
    Forbidden,
    /// 404: nothing of that id in the caller's tenant.
    NotFound,
    /// 409: the request contradicts the current state.
    Conflict,
    /// 503: a dependency (database, broker, Stripe) is not reachable; retry.
    Unavailable,
    /// 429: over the per-token rate limit; see `Retry-After`.
    RateLimited,
    /// 500: our fault; the cause is logged, never returned.
    Internal,
}

/// The body of every error answer: `{"error": {"code", "message"}}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// For a person; may change between versions, unlike `code`.
    pub message: String,
}

impl ApiError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::BadRequest(_) => ErrorCode::BadRequest,
            Self::Unauthenticated => ErrorCode::Unauthenticated,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::NotFound | Self::NotFoundWith(_) => ErrorCode::NotFound,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::Unavailable => ErrorCode::Unavailable,
            Self::RateLimited(_) => ErrorCode::RateLimited,
            Self::Internal(_) => ErrorCode::Internal,
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
        HttpResponse::build(self.status_code()).json(ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.to_string(),
            },
        })
    }
}

impl From<diesel::result::Error> for ApiError {
    /// A connection Postgres closed (a restart, a failover) is the dependency being away, not
    /// our fault: 503, so the client retries; the pool drops that connection on return.
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match e {
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _)
            | Error::BrokenTransactionManager => {
                tracing::warn!(error = %e, "database connection lost");
                Self::Unavailable
            }
            e => Self::Internal(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::result::{DatabaseErrorKind, Error};

    #[test]
    fn a_lost_connection_is_unavailable_and_other_database_errors_internal() {
        let closed = Error::DatabaseError(
            DatabaseErrorKind::ClosedConnection,
            Box::new("server closed the connection".to_string()),
        );
        assert_eq!(
            ApiError::from(closed).status_code(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            ApiError::from(Error::BrokenTransactionManager).status_code(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        let unique = Error::DatabaseError(
            DatabaseErrorKind::UniqueViolation,
            Box::new("duplicate key".to_string()),
        );
        assert_eq!(
            ApiError::from(unique).status_code(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(
            ApiError::from(Error::NotFound).status_code(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
