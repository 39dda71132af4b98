//! One Stripe client per connection, shared by backfill, live events and reconciliation so
//! they all draw on the same rate budget. Credentials are read (and unsealed) once and
//! re-read when a connection is not cached or was revoked.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use platform::crypto::Sealer;
use platform::db::PgPool;
use stripe_api::StripeApi;
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::credentials::{self, CredentialsError};
use crate::rows::Scope;

/// A connection ready to sync.
#[derive(Debug, Clone)]
pub struct Connection {
    pub id: Uuid,
    pub scope: Scope,
    pub api: StripeApi,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    #[error("database pool: {0}")]
    Pool(String),
    #[error("Stripe client: {0}")]
    Client(#[from] stripe_api::ApiError),
    #[error("no active connection for tenant {tenant} and Stripe account {account}")]
    NoConnection { tenant: String, account: String },
}

impl ConnectionError {
    /// Worth retrying later (the database was unavailable), rather than a fact about the data.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ConnectionError::Pool(_) | ConnectionError::Credentials(CredentialsError::Database(_))
        )
    }
}

pub struct Connections {
    pool: PgPool,
    sealer: Arc<Sealer>,
    api_base: String,
    requests_per_second: u32,
    by_id: Mutex<HashMap<Uuid, (Connection, Instant)>>,
}

/// How long credentials are trusted before being re-read: a revoked connection or a
/// rotated key is noticed within this time even without an error from Stripe.
const CACHE_TTL: Duration = Duration::from_secs(60);

impl Connections {
    pub fn new(
        pool: PgPool,
        sealer: Arc<Sealer>,
        api_base: String,
        requests_per_second: u32,
    ) -> Self {
        Connections {
            pool,
            sealer,
            api_base,
            requests_per_second,
            by_id: Mutex::default(),
        }
    }

    /// The active connection `id`; a revoked one is an error (stop syncing it).
    pub async fn get(&self, id: Uuid) -> Result<Connection, ConnectionError> {
        let cached = self.by_id.lock().await.get(&id).cloned();
        if let Some((found, at)) = &cached {
            if at.elapsed() < CACHE_TTL {
                return Ok(found.clone());
            }
        }
        let mut conn = self
            .pool
            .get()
            .await
            .map_err(|e| ConnectionError::Pool(e.to_string()))?;
        let loaded = credentials::load(&mut conn, &self.sealer, id)
            .await
            .and_then(|c| c.require_active());
        let creds = match loaded {
            Ok(creds) => creds,
            Err(e) => {
                self.forget(id).await;
                return Err(e.into());
            }
        };
        if let Some((found, _)) = cached {
            // Still active: keep the client, and with it the rate budget it has spent.
            self.by_id
                .lock()
                .await
                .insert(id, (found.clone(), Instant::now()));
            return Ok(found);
        }
        let mut config = creds.api_config(self.api_base.clone());
        if self.requests_per_second > 0 {
            config.requests_per_second = self.requests_per_second;
        }
        let connection = Connection {
            id,
            scope: Scope {
                tenant_id: creds.tenant_id.clone(),
                account_id: creds.account_id.clone(),
            },
            api: StripeApi::new(config)?,
        };
        self.by_id
            .lock()
            .await
            .insert(id, (connection.clone(), Instant::now()));
        Ok(connection)
    }

    /// The active connection of `tenant` reading Stripe `account`.
    pub async fn for_account(
        &self,
        tenant: &str,
        account: &str,
    ) -> Result<Connection, ConnectionError> {
        if let Some((found, _)) = self.by_id.lock().await.values().find(|(c, at)| {
            c.scope.tenant_id == tenant && c.scope.account_id == account && at.elapsed() < CACHE_TTL
        }) {
            return Ok(found.clone());
        }
        for candidate in self.active().await? {
            if candidate.tenant_id != tenant {
                continue;
            }
            let connection = self.get(candidate.connection_id).await?;
            if connection.scope.account_id == account {
                return Ok(connection);
            }
        }
        Err(ConnectionError::NoConnection {
            tenant: tenant.to_owned(),
            account: account.to_owned(),
        })
    }

    /// The tenant's only active connection (platform-endpoint events carry no account).
    pub async fn only_for_tenant(&self, tenant: &str) -> Result<Connection, ConnectionError> {
        let mine: Vec<_> = self
            .active()
            .await?
            .into_iter()
            .filter(|c| c.tenant_id == tenant)
            .collect();
        match mine.as_slice() {
            [one] => self.get(one.connection_id).await,
            _ => Err(ConnectionError::NoConnection {
                tenant: tenant.to_owned(),
                account: format!(
                    "(none given; the tenant has {} active connections)",
                    mine.len()
                ),
            }),
        }
    }

    pub async fn active(&self) -> Result<Vec<credentials::ConnectionRef>, ConnectionError> {
        let mut conn = self
            .pool
            .get()
            .await
            .map_err(|e| ConnectionError::Pool(e.to_string()))?;
        Ok(credentials::active(&mut conn).await?)
    }

    /// Drops a cached connection (revoked, or its key stopped working).
    pub async fn forget(&self, id: Uuid) {
        self.by_id.lock().await.remove(&id);
    }
}
