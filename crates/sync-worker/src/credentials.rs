//! A connection's Stripe credentials, read from query-api's `integration.sync_connections`
//! view (the owner's read model; never its table) and opened with the same master keys and
//! associated data query-api sealed them with ([`platform::crypto::connection_context`]).
//!
//! # Calling Stripe with them
//!
//! Use [`Credentials::secret`] as the bearer key and send a `Stripe-Account` header only when
//! [`Credentials::stripe_account_header`] says so ([`Credentials::api_config`] does both):
//!
//! - `restricted_key` / `secret_key`: the key belongs to the account it reads; no header.
//! - `oauth`: the stored secret is the access token `/oauth/token` issued for the connected
//!   account. It authenticates as that account by itself, so again no header. Stripe documents
//!   this as supported (its recommended alternative is the platform's secret key plus
//!   `Stripe-Account: acct_…`, which would need the platform key in the worker); the fake
//!   resolves the account from the token's grant and would also accept the header only if it
//!   names the same account. After `account.application.deauthorized` both Stripe and the fake
//!   refuse the token, and query-api marks the connection revoked.
//!
//! A revoked connection is still returned by [`load`] (with `revoked: true`) so a running sync
//! can see it; [`Credentials::require_active`] turns that into [`CredentialsError::Revoked`].

use diesel::{ExpressionMethods as _, OptionalExtension as _, QueryDsl as _};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use platform::crypto::{connection_context, CryptoError, Sealed, Sealer};
use secrecy::{ExposeSecret as _, SecretString};
use uuid::Uuid;

diesel::table! {
    /// `migrations/integration/…_sync_connections`: every connection, active and revoked.
    integration.sync_connections (id) {
        id -> Uuid,
        tenant_id -> Text,
        kind -> Text,
        account_id -> Text,
        livemode -> Bool,
        secret_sealed -> Bytea,
        secret_key_id -> Text,
        status -> Text,
        created_at -> Timestamptz,
    }
}

/// How a connection authenticates at Stripe (`integration.connections.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionKind {
    RestrictedKey,
    /// A full secret key (dev/demo installations only).
    SecretKey,
    /// A Connect OAuth grant; the secret is the connected account's access token.
    OAuth,
}

impl ConnectionKind {
    fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "restricted_key" => Self::RestrictedKey,
            "secret_key" => Self::SecretKey,
            "oauth" => Self::OAuth,
            _ => return None,
        })
    }
}

/// What a sync needs to call Stripe for one connection. `Debug` never shows the secret.
#[derive(Debug)]
pub struct Credentials {
    pub connection_id: Uuid,
    pub tenant_id: String,
    /// The Stripe account (`acct_…`) the secret reads.
    pub account_id: String,
    pub kind: ConnectionKind,
    pub livemode: bool,
    /// Bearer key: restricted/secret key, or the OAuth access token.
    pub secret: SecretString,
    /// Disconnected by an admin or deauthorized at Stripe: stop syncing.
    pub revoked: bool,
}

impl Credentials {
    /// The `Stripe-Account` header to send with [`Self::secret`]: `None` for every kind we
    /// store, because each secret already authenticates as its own account (module docs).
    pub fn stripe_account_header(&self) -> Option<&str> {
        // Exhaustive on purpose: a new kind (say, platform key + account) must decide here.
        match self.kind {
            ConnectionKind::RestrictedKey | ConnectionKind::SecretKey | ConnectionKind::OAuth => {
                None
            }
        }
    }

    /// A Stripe client configuration for these credentials against `base_url` (Stripe or
    /// the fake), with the rate limit of the connection's mode.
    pub fn api_config(&self, base_url: impl Into<String>) -> stripe_api::ApiConfig {
        let mut config = stripe_api::ApiConfig::new(
            base_url,
            SecretString::from(self.secret.expose_secret()),
            self.livemode,
        );
        config.account = self.stripe_account_header().map(str::to_string);
        config
    }

    /// These credentials, or [`CredentialsError::Revoked`] when the connection was revoked.
    pub fn require_active(self) -> Result<Self, CredentialsError> {
        if self.revoked {
            return Err(CredentialsError::Revoked {
                connection_id: self.connection_id,
            });
        }
        Ok(self)
    }
}

/// An active connection, for the scheduler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionRef {
    pub connection_id: Uuid,
    pub tenant_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("no Stripe connection {connection_id}")]
    NotFound { connection_id: Uuid },
    #[error("Stripe connection {connection_id} was revoked")]
    Revoked { connection_id: Uuid },
    /// Tampered, moved to another row, or sealed with a master key this process lacks.
    #[error("secret of Stripe connection {connection_id} cannot be opened")]
    Unseal {
        connection_id: Uuid,
        #[source]
        source: CryptoError,
    },
    #[error("Stripe connection {connection_id} has unknown kind `{kind}`")]
    UnknownKind { connection_id: Uuid, kind: String },
    #[error("reading Stripe connections")]
    Database(#[from] diesel::result::Error),
}

#[derive(diesel::Queryable)]
struct Row {
    tenant_id: String,
    kind: String,
    account_id: String,
    livemode: bool,
    secret_sealed: Vec<u8>,
    secret_key_id: String,
    status: String,
}

/// Loads and opens the credentials of `connection_id`, revoked or not.
pub async fn load(
    conn: &mut AsyncPgConnection,
    sealer: &Sealer,
    connection_id: Uuid,
) -> Result<Credentials, CredentialsError> {
    let row: Row = sync_connections::table
        .filter(sync_connections::id.eq(connection_id))
        .select((
            sync_connections::tenant_id,
            sync_connections::kind,
            sync_connections::account_id,
            sync_connections::livemode,
            sync_connections::secret_sealed,
            sync_connections::secret_key_id,
            sync_connections::status,
        ))
        .first(conn)
        .await
        .optional()?
        .ok_or(CredentialsError::NotFound { connection_id })?;
    let kind = ConnectionKind::parse(&row.kind).ok_or_else(|| CredentialsError::UnknownKind {
        connection_id,
        kind: row.kind.clone(),
    })?;
    let sealed = Sealed {
        key_id: row.secret_key_id,
        bytes: row.secret_sealed,
    };
    let unseal = |source| CredentialsError::Unseal {
        connection_id,
        source,
    };
    let plain = sealer
        .open(&sealed, &connection_context(&row.tenant_id, connection_id))
        .map_err(unseal)?;
    // query-api seals UTF-8 keys and tokens; anything else was not sealed by it.
    let secret = String::from_utf8(plain).map_err(|_| unseal(CryptoError::Open))?;
    Ok(Credentials {
        connection_id,
        tenant_id: row.tenant_id,
        account_id: row.account_id,
        kind,
        livemode: row.livemode,
        secret: SecretString::from(secret),
        revoked: row.status != "active",
    })
}

/// Every active connection, oldest first.
pub async fn active(conn: &mut AsyncPgConnection) -> Result<Vec<ConnectionRef>, CredentialsError> {
    let rows: Vec<(Uuid, String)> = sync_connections::table
        .filter(sync_connections::status.eq("active"))
        .order((sync_connections::created_at, sync_connections::id))
        .select((sync_connections::id, sync_connections::tenant_id))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(connection_id, tenant_id)| ConnectionRef {
            connection_id,
            tenant_id,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials(kind: ConnectionKind, revoked: bool) -> Credentials {
        Credentials {
            connection_id: Uuid::nil(),
            tenant_id: "tenant-a".into(),
            account_id: "acct_1".into(),
            kind,
            livemode: false,
            secret: SecretString::from("sk_test_oauth_supersecret"),
            revoked,
        }
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let shown = format!("{:?}", credentials(ConnectionKind::OAuth, false));
        assert!(!shown.contains("supersecret"), "{shown}");
        assert!(shown.contains("acct_1"), "{shown}");
    }

    #[test]
    fn every_stored_kind_authenticates_without_a_stripe_account_header() {
        for kind in [
            ConnectionKind::RestrictedKey,
            ConnectionKind::SecretKey,
            ConnectionKind::OAuth,
        ] {
            let creds = credentials(kind, false);
            assert_eq!(creds.stripe_account_header(), None);
            let config = creds.api_config("http://127.0.0.1:1");
            assert_eq!(config.account, None);
            assert_eq!(config.secret.expose_secret(), "sk_test_oauth_supersecret");
            assert_eq!(config.requests_per_second, stripe_api::TEST_RATE);
        }
    }

    #[test]
    fn revoked_credentials_are_refused_on_demand() {
        assert!(credentials(ConnectionKind::OAuth, false)
            .require_active()
            .is_ok());
        assert!(matches!(
            credentials(ConnectionKind::OAuth, true).require_active(),
            Err(CredentialsError::Revoked { .. })
        ));
    }
}
