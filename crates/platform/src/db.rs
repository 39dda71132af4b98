//! Postgres: a pool of async diesel connections, the database created when absent (dev), and
//! each service's embedded migrations applied to its own schema under an advisory lock so
//! that replicas starting together migrate once.

use std::time::Duration;

use anyhow::Context as _;
use diesel::{sql_types::Text, QueryableByName};
use diesel_async::{
    pooled_connection::{
        deadpool::Pool, AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
    },
    AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _,
};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness as _};
use tokio_util::sync::CancellationToken;

use crate::{backoff::Backoff, config::DatabaseSettings};

pub type PgPool = Pool<AsyncPgConnection>;
pub type PooledConn = diesel_async::pooled_connection::deadpool::Object<AsyncPgConnection>;

/// A pool that connects lazily; see [`connect_with_retry`] for start-up.
///
/// Checkout does not ping: diesel-async's default (`Verified`) sends `SELECT 1` on every
/// `get()`, a round trip per transaction on every hot path. `Fast` still refuses a
/// connection whose socket Postgres closed (a restart closes them all) or whose transaction
/// state is broken; a connection that dies unnoticed fails its first query, which callers
/// already treat as transient (the message is retried, the API answers 503).
pub fn pool(settings: &DatabaseSettings) -> anyhow::Result<PgPool> {
    let mut config = ManagerConfig::default();
    config.recycling_method = RecyclingMethod::Fast;
    let manager =
        AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(&settings.url, config);
    Pool::builder(manager)
        .max_size(settings.pool_size)
        .wait_timeout(Some(Duration::from_secs(5)))
        .create_timeout(Some(Duration::from_secs(5)))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .context("building the Postgres pool")
}

/// Whether the pool can run a query right now (for `/readyz`).
pub async fn ping(pool: &PgPool) -> bool {
    let Ok(mut conn) = pool.get().await else {
        return false;
    };
    diesel::sql_query("SELECT 1")
        .execute(&mut conn)
        .await
        .is_ok()
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

/// Creates the database named in `url` when it does not exist.
pub async fn ensure_database(url: &str) -> anyhow::Result<()> {
    let mut parsed = url::Url::parse(url).context("database.url")?;
    let name = parsed.path().trim_start_matches('/').to_string();
    anyhow::ensure!(
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
        "database name `{name}` must be letters, digits, '_' or '-'"
    );
    parsed.set_path("/postgres");
    let mut admin = AsyncPgConnection::establish(parsed.as_str())
        .await
        .context("connecting to the postgres database")?;
    let existing: Vec<Name> =
        diesel::sql_query("SELECT datname AS name FROM pg_database WHERE datname = $1")
            .bind::<Text, _>(&name)
            .load(&mut admin)
            .await?;
    if !existing.iter().any(|row| row.name == name) {
        match diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await
        {
            Ok(_) => tracing::info!(database = %name, "created database"),
            // Another service created it at the same moment.
            Err(e)
                if e.to_string().contains("already exists")
                    || e.to_string().contains("duplicate key") => {}
            Err(e) => return Err(e).context("creating the database"),
        }
    }
    Ok(())
}

/// Applies `migrations` to `schema` (created if absent). Diesel's bookkeeping table lives in
/// the schema too, so services never see each other's migration history.
pub async fn migrate(
    url: &str,
    schema: &str,
    migrations: EmbeddedMigrations,
) -> anyhow::Result<Vec<String>> {
    anyhow::ensure!(
        schema.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
        "schema name `{schema}` must be lowercase letters or '_'"
    );
    let mut conn = AsyncPgConnection::establish(url)
        .await
        .context("connecting for migrations")?;
    let lock_key = format!("billing-migrate:{schema}");
    diesel::sql_query("SELECT pg_advisory_lock(hashtext($1))::text AS name")
        .bind::<Text, _>(&lock_key)
        .load::<Name>(&mut conn)
        .await?;
    diesel::sql_query(format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
        .execute(&mut conn)
        .await?;
    diesel::sql_query(format!("SET search_path TO {schema}, public"))
        .execute(&mut conn)
        .await?;
    let mut harness = diesel_async::AsyncMigrationHarness::new(conn);
    let applied = harness
        .run_pending_migrations(migrations)
        .map_err(|e| anyhow::anyhow!("migrating schema {schema}: {e}"))?
        .into_iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>();
    let mut conn = harness.into_inner();
    diesel::sql_query("SELECT pg_advisory_unlock(hashtext($1))::text AS name")
        .bind::<Text, _>(&lock_key)
        .load::<Name>(&mut conn)
        .await?;
    if !applied.is_empty() {
        tracing::info!(schema, ?applied, "applied migrations");
    }
    Ok(applied)
}

/// Start-up: create the database if allowed, migrate if asked, and return a pool once a
/// query succeeds. Retries with backoff while Postgres is down; `None` if cancelled first.
pub async fn connect_with_retry(
    settings: &DatabaseSettings,
    schema: &str,
    migrations: fn() -> EmbeddedMigrations,
    migrate_now: bool,
    cancel: &CancellationToken,
) -> Option<PgPool> {
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
    loop {
        match try_connect(settings, schema, migrations, migrate_now).await {
            Ok(pool) => return Some(pool),
            Err(error) => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %format!("{error:#}"), retry_in_ms = delay.as_millis() as u64, "Postgres not ready");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = cancel.cancelled() => return None,
                }
            }
        }
    }
}

async fn try_connect(
    settings: &DatabaseSettings,
    schema: &str,
    migrations: fn() -> EmbeddedMigrations,
    migrate_now: bool,
) -> anyhow::Result<PgPool> {
    if settings.create_if_missing {
        ensure_database(&settings.url).await?;
    }
    if migrate_now {
        migrate(&settings.url, schema, migrations()).await?;
    }
    let pool = pool(settings)?;
    anyhow::ensure!(ping(&pool).await, "Postgres did not answer SELECT 1");
    Ok(pool)
}
