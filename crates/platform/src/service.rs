//! What every service binary shares: the `serve` / `migrate` command line, start-up that
//! waits for Postgres and RabbitMQ with backoff while `/readyz` says not-ready, and the
//! health listener of the worker services.

use std::{net::SocketAddr, sync::Arc};

use actix_web::{web, App, HttpServer};
use diesel_migrations::EmbeddedMigrations;
use tokio_util::sync::CancellationToken;

use crate::{
    amqp::{Broker, Topology},
    config::CommonSettings,
    db::PgPool,
    health::{self, Readiness},
};

#[derive(Debug, clap::Parser)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Copy, clap::Subcommand)]
pub enum Command {
    /// Run the service (default). Migrates its schema first unless `database.migrate_on_start` is false.
    Serve,
    /// Apply this service's migrations to its own schema and exit (the Kubernetes migration Job).
    Migrate,
}

impl Cli {
    pub fn command(&self) -> Command {
        self.command.unwrap_or(Command::Serve)
    }
}

/// The identity of a service: its name, the schema it owns, and what it declares on the bus.
#[derive(Clone)]
pub struct ServiceSpec {
    pub name: &'static str,
    pub schema: &'static str,
    /// Returns the embedded migrations (a fn: `EmbeddedMigrations` is neither `Copy` nor `Clone`).
    pub migrations: fn() -> EmbeddedMigrations,
    pub topology: Topology,
}

/// `migrate` subcommand: create the database when allowed, apply migrations, exit.
pub async fn migrate(spec: &ServiceSpec, common: &CommonSettings) -> anyhow::Result<()> {
    if common.database.create_if_missing {
        crate::db::ensure_database(&common.database.url).await?;
    }
    let applied =
        crate::db::migrate(&common.database.url, spec.schema, (spec.migrations)()).await?;
    tracing::info!(
        schema = spec.schema,
        count = applied.len(),
        "migrations up to date"
    );
    Ok(())
}

/// Connects to Postgres (migrating when configured) and RabbitMQ (declaring the topology),
/// retrying each with backoff and recording progress in `readiness`. `None` if cancelled.
pub async fn dependencies(
    spec: &ServiceSpec,
    common: &CommonSettings,
    readiness: &Readiness,
    cancel: &CancellationToken,
) -> Option<(PgPool, Arc<Broker>)> {
    let pool = database(spec, common, readiness, cancel).await?;
    let broker = Broker::new(common.amqp.clone(), spec.topology.clone());
    broker.connect_with_retry(cancel).await?;
    readiness.set_broker(broker.clone());
    tracing::info!(service = spec.name, "dependencies ready");
    Some((pool, broker))
}

/// Waits for the service's database (migrating when configured) and records it in
/// `readiness`; `None` if cancelled first. The shared first step of every service's start-up.
pub async fn database(
    spec: &ServiceSpec,
    common: &CommonSettings,
    readiness: &Readiness,
    cancel: &CancellationToken,
) -> Option<PgPool> {
    let pool = crate::db::connect_with_retry(
        &common.database,
        spec.schema,
        spec.migrations,
        common.database.migrate_on_start,
        cancel,
    )
    .await?;
    readiness.set_pool(pool.clone());
    Some(pool)
}

/// The health/metrics listener of a worker. Returns the server (to await) and its bound port.
pub fn admin_server(
    listen: SocketAddr,
    readiness: Arc<Readiness>,
) -> std::io::Result<(actix_web::dev::Server, u16)> {
    let _ = health::prometheus();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(readiness.clone()))
            .configure(health::configure)
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(5)
    .bind(listen)?;
    let port = server.addrs().first().map(|a| a.port()).unwrap_or_default();
    Ok((server.run(), port))
}

/// A service's settings: the shared sections plus its own.
pub trait ServiceSettings: Sized {
    fn from_config(raw: &crate::config::Raw) -> anyhow::Result<Self>;
    fn common(&self) -> &CommonSettings;
}

/// Loads the settings and initialises telemetry; fails with the offending key named.
pub fn bootstrap<T: ServiceSettings>(
    service: &'static str,
) -> anyhow::Result<(T, crate::telemetry::TelemetryGuard)> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let settings = T::from_config(&crate::config::load()?)?;
    crate::config::validate_common(settings.common())?;
    let guard = crate::telemetry::init(service, &settings.common().telemetry)?;
    Ok((settings, guard))
}

/// Starts the consumers of a service once its dependencies are up; returns their tasks.
pub type StartConsumers = Box<
    dyn FnOnce(PgPool, Arc<Broker>, CancellationToken) -> Vec<tokio::task::JoinHandle<()>> + Send,
>;

/// A service with no consumers yet (its behaviour lands with its own issue).
pub fn no_consumers() -> StartConsumers {
    Box::new(|_, _, _| Vec::new())
}

/// Runs `command` for a service: `migrate` and exit, or `serve` until SIGTERM.
pub async fn execute(
    command: Command,
    spec: &ServiceSpec,
    common: &CommonSettings,
    listen: SocketAddr,
    consumers: StartConsumers,
) -> anyhow::Result<()> {
    match command {
        Command::Migrate => migrate(spec, common).await,
        Command::Serve => {
            serve(
                spec,
                common,
                listen,
                consumers,
                crate::shutdown::on_signal(),
            )
            .await
        }
    }
}

/// Serves health and metrics at once, waits for Postgres and RabbitMQ, runs the consumers,
/// and on cancellation drains them before returning.
pub async fn serve(
    spec: &ServiceSpec,
    common: &CommonSettings,
    listen: SocketAddr,
    consumers: StartConsumers,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let readiness = Readiness::new(true, true);
    let (server, port) = admin_server(listen, readiness.clone())?;
    let server_handle = server.handle();
    let server_task = tokio::spawn(server);
    tracing::info!(
        service = spec.name,
        port,
        "listening for /healthz /readyz /metrics"
    );

    if let Some((pool, broker)) = dependencies(spec, common, &readiness, &cancel).await {
        let tasks = consumers(pool, broker.clone(), cancel.clone());
        cancel.cancelled().await;
        readiness.start_draining();
        for task in tasks {
            let _ = task.await;
        }
        broker.close().await;
    }
    server_handle.stop(true).await;
    let _ = server_task.await;
    tracing::info!(service = spec.name, "stopped");
    Ok(())
}
