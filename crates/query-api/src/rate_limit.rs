//! Per-token rate limiting on `/api` and `/ui`: each bearer token (from `Authorization` or
//! the widget's `?token=`) gets its own GCRA bucket (governor), sustained
//! `rate_limit_per_second` with a `rate_limit_burst`. Over it: 429 with `Retry-After`, before
//! any handler or database work. Tokens are keyed by their SHA-256, so the limiter holds no
//! token; requests without one are not limited here (they end as 401 anyway).

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, ResponseError as _};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::error::ApiError;

/// How often (in checked requests) buckets of idle tokens are dropped.
const PRUNE_EVERY: u64 = 10_000;

pub struct TokenLimiter {
    limiter: DefaultKeyedRateLimiter<[u8; 32]>,
    checked: AtomicU64,
}

impl TokenLimiter {
    pub fn new(per_second: u32, burst: u32) -> Self {
        let quota = Quota::per_second(NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN));
        Self {
            limiter: DefaultKeyedRateLimiter::keyed(quota),
            checked: AtomicU64::new(0),
        }
    }

    /// Takes one request from `token`'s bucket; the wait in whole seconds (≥ 1) when empty.
    pub fn check(&self, token: &str) -> Result<(), u64> {
        if self.checked.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(digest.as_ref());
        self.limiter.check_key(&key).map_err(|not_until| {
            not_until
                .wait_time_from(DefaultClock::default().now())
                .as_secs_f64()
                .ceil()
                .max(1.0) as u64
        })
    }
}

/// The request's token, if it carries one where the API or the widget would read it.
fn token(req: &ServiceRequest) -> Option<String> {
    if let Some(value) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        return value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(|t| t.trim().to_owned());
    }
    if req.path().starts_with("/ui/") {
        return url::form_urlencoded::parse(req.query_string().as_bytes())
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned());
    }
    None
}

/// The middleware (`middleware::from_fn(rate_limit::limit)`).
pub async fn limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let limited = req.path().starts_with("/api/") || req.path().starts_with("/ui/accounts/");
    if limited {
        if let (Some(limiter), Some(token)) =
            (req.app_data::<web::Data<TokenLimiter>>(), token(&req))
        {
            if let Err(wait) = limiter.check(&token) {
                metrics::counter!("query_api_rate_limited_total").increment(1);
                let mut response = ApiError::RateLimited(wait).error_response();
                if let Ok(value) = header::HeaderValue::from_str(&wait.to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
                return Ok(req.into_response(response).map_into_right_body());
            }
        }
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_token_has_its_own_burst() {
        let limiter = TokenLimiter::new(1, 3);
        for _ in 0..3 {
            assert_eq!(limiter.check("token-a"), Ok(()));
        }
        let wait = limiter.check("token-a").unwrap_err();
        assert!((1..=2).contains(&wait), "{wait}");
        assert_eq!(
            limiter.check("token-b"),
            Ok(()),
            "another token is not slowed"
        );
    }
}
