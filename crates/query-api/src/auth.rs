//! Bearer tokens: HS256 JWTs carrying the tenant (CSCX organisation), the user and roles,
//! verified with a configured key. Every `/api` handler takes a [`Caller`], so a request
//! without a valid token never reaches one, and every query is scoped to `caller.tenant`.

use std::{future::Future, pin::Pin, sync::Arc};

use actix_web::{web, FromRequest, HttpRequest};
use domain::TenantId;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

pub const ISSUER: &str = "cscx";
pub const AUDIENCE: &str = "billing-api";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user (CSM or admin) id in CSCX.
    pub sub: String,
    /// Tenant: the CSCX organisation.
    pub tid: String,
    pub roles: Vec<String>,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Csm,
    Admin,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Self::Csm => "csm",
            Self::Admin => "admin",
        }
    }
}

pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl TokenKeys {
    /// `secret` must be at least 32 bytes (HS256 key).
    pub fn new(secret: &[u8]) -> Result<Self, platform::config::ConfigError> {
        if secret.len() < 32 {
            return Err(platform::config::ConfigError::new(
                "BILLING_JWT_SECRET",
                "must be at least 32 bytes",
            ));
        }
        Ok(Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        })
    }

    /// Mints a token (`billingctl token`, tests).
    pub fn mint(
        &self,
        tenant: &str,
        user: &str,
        roles: &[Role],
        ttl_secs: i64,
    ) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user.into(),
            tid: TenantId::parse(tenant)?.into_string(),
            roles: roles.iter().map(|r| r.as_str().to_string()).collect(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat: now,
            exp: now + ttl_secs,
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    pub fn verify(&self, token: &str) -> Result<Caller, ApiError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 30;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|_| ApiError::Unauthenticated)?;
        let tenant = TenantId::parse(&data.claims.tid).map_err(|_| ApiError::Unauthenticated)?;
        if data.claims.sub.is_empty() {
            return Err(ApiError::Unauthenticated);
        }
        let roles = data
            .claims
            .roles
            .iter()
            .filter_map(|r| match r.as_str() {
                "csm" => Some(Role::Csm),
                "admin" => Some(Role::Admin),
                _ => None,
            })
            .collect();
        Ok(Caller {
            tenant,
            user: data.claims.sub,
            roles,
        })
    }
}

/// The authenticated caller of an `/api` request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant: TenantId,
    pub user: String,
    pub roles: Vec<Role>,
}

impl Caller {
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.roles.contains(&role) || self.roles.contains(&Role::Admin) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(role.as_str()))
        }
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let keys = req.app_data::<web::Data<Arc<TokenKeys>>>().cloned();
        let header = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Box::pin(async move {
            let keys = keys.ok_or(ApiError::Unavailable)?;
            let token = header
                .as_deref()
                .and_then(|h| {
                    h.strip_prefix("Bearer ")
                        .or_else(|| h.strip_prefix("bearer "))
                })
                .ok_or(ApiError::Unauthenticated)?;
            keys.verify(token.trim())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn minted_tokens_verify() {
        let keys = TokenKeys::new(SECRET).unwrap();
        let token = keys.mint("tenant-a", "user-1", &[Role::Csm], 600).unwrap();
        let caller = keys.verify(&token).unwrap();
        assert_eq!(caller.tenant.as_str(), "tenant-a");
        assert_eq!(caller.user, "user-1");
        assert!(caller.require(Role::Csm).is_ok());
        assert!(matches!(
            caller.require(Role::Admin),
            Err(ApiError::Forbidden("admin"))
        ));
        let admin = keys
            .verify(&keys.mint("tenant-a", "boss", &[Role::Admin], 600).unwrap())
            .unwrap();
        assert!(admin.require(Role::Csm).is_ok());
    }

    #[test]
    fn expired_forged_and_garbage_tokens_are_refused() {
        let keys = TokenKeys::new(SECRET).unwrap();
        let expired = keys.mint("tenant-a", "u", &[Role::Csm], -120).unwrap();
        assert!(matches!(
            keys.verify(&expired),
            Err(ApiError::Unauthenticated)
        ));
        let other = TokenKeys::new(b"another-secret-another-secret-xx").unwrap();
        let forged = other.mint("tenant-a", "u", &[Role::Admin], 600).unwrap();
        assert!(matches!(
            keys.verify(&forged),
            Err(ApiError::Unauthenticated)
        ));
        for garbage in ["", "abc", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1In0."] {
            assert!(
                matches!(keys.verify(garbage), Err(ApiError::Unauthenticated)),
                "{garbage}"
            );
        }
        // Changing the tenant inside a valid token breaks its signature.
        let token = keys.mint("tenant-a", "u", &[Role::Csm], 600).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        use base64::Engine as _;
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut claims: serde_json::Value =
            serde_json::from_slice(&engine.decode(parts[1]).unwrap()).unwrap();
        claims["tid"] = "tenant-b".into();
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            engine.encode(claims.to_string()),
            parts[2]
        );
        assert!(matches!(
            keys.verify(&tampered),
            Err(ApiError::Unauthenticated)
        ));
    }

    #[test]
    fn short_keys_are_refused() {
        assert_eq!(
            TokenKeys::new(b"short").err().unwrap().key,
            "BILLING_JWT_SECRET"
        );
    }
}
