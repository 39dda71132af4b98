//! The query-api process: the HTTP listener starts at once (health, then `/api` answering 503
//! until Postgres is ready), migrations of the `integration` schema, the consumer of Stripe
//! events that change connections, graceful stop. Readiness depends on Postgres only: with
//! the broker down the API still serves (backfill requests are best effort).

use std::{sync::Arc, time::Duration};

use actix_web::{web, App, HttpServer};
use platform::{
    amqp::{run_consumer, Broker, ConsumerOptions, Publisher},
    config::CommonSettings,
    db::{PgPool, PooledConn},
    health::{self, Readiness},
    CancellationToken,
};

use crate::{
    auth::TokenKeys, connections, crypto::Sealer, deauthorization::Deauthorizations,
    error::ApiError, settings::QueryApiSettings,
};

/// Shared by every handler.
pub struct AppState {
    pub settings: QueryApiSettings,
    pub sealer: Sealer,
    pub http: reqwest::Client,
    pub pool: std::sync::OnceLock<PgPool>,
    /// Publishes sync jobs and matching decisions (connects lazily).
    pub bus: Publisher,
}

impl AppState {
    pub async fn conn(&self) -> Result<PooledConn, ApiError> {
        let pool = self.pool.get().ok_or(ApiError::Unavailable)?;
        pool.get().await.map_err(|_| ApiError::Unavailable)
    }
}

pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    state: web::Data<AppState>,
    readiness: Arc<Readiness>,
    broker: Arc<Broker>,
    common: CommonSettings,
}

/// CORS for the CSCX origins only; any other origin gets no CORS headers (so browsers refuse).
fn cors(origins: &[String]) -> actix_cors::Cors {
    use actix_web::http::header;
    origins.iter().fold(
        actix_cors::Cors::default()
            .allowed_methods(["GET", "POST", "PUT", "DELETE"])
            .allowed_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
            .expose_headers([header::RETRY_AFTER])
            .max_age(3600),
        |cors, origin| cors.allowed_origin(origin),
    )
}

impl Application {
    pub fn build(
        common: CommonSettings,
        settings: QueryApiSettings,
        keys: TokenKeys,
        sealer: Sealer,
    ) -> anyhow::Result<Self> {
        settings.validate()?;
        let readiness = Readiness::new(true, false);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()?;
        let listen = settings.listen;
        let origins: Vec<String> = settings.origins().into_iter().map(str::to_owned).collect();
        let limiter = web::Data::new(crate::rate_limit::TokenLimiter::new(
            settings.rate_limit_per_second,
            settings.rate_limit_burst,
        ));
        let broker = Broker::new(common.amqp.clone(), crate::spec().topology);
        let state = web::Data::new(AppState {
            settings,
            sealer,
            http,
            pool: std::sync::OnceLock::new(),
            bus: Publisher::new(broker.clone()),
        });
        let keys = web::Data::new(Arc::new(keys));
        let _ = health::prometheus();
        let (app_state, app_readiness) = (state.clone(), readiness.clone());
        let server =
            HttpServer::new(move || {
                App::new()
                    .wrap(actix_web::middleware::from_fn(crate::rate_limit::limit))
                    .wrap(cors(&origins))
                    .app_data(limiter.clone())
                    .app_data(app_state.clone())
                    .app_data(keys.clone())
                    .app_data(web::Data::new(app_readiness.clone()))
                    .app_data(web::JsonConfig::default().limit(64 * 1024).error_handler(
                        |err, _| ApiError::BadRequest(format!("invalid JSON body: {err}")).into(),
                    ))
                    .app_data(web::QueryConfig::default().error_handler(|err, _| {
                        ApiError::BadRequest(format!("invalid query string: {err}")).into()
                    }))
                    .configure(health::configure)
                    .configure(connections::configure)
                    .configure(crate::oauth::configure)
                    .configure(crate::matching::configure)
                    .configure(crate::alerts::configure)
                    .configure(crate::alert_webhook::configure)
                    .configure(crate::reads::configure)
                    .configure(crate::chat::configure)
                    .configure(crate::ui::configure)
                    .configure(crate::openapi::configure)
            })
            .disable_signals()
            .shutdown_timeout(10)
            .bind(listen)?;
        let port = server.addrs().first().map(|a| a.port()).unwrap_or_default();
        Ok(Self {
            port,
            server: server.run(),
            state,
            readiness,
            broker,
            common,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn readiness(&self) -> Arc<Readiness> {
        self.readiness.clone()
    }

    pub async fn run_until_stopped(self, cancel: CancellationToken) -> anyhow::Result<()> {
        let Self {
            port,
            server,
            state,
            readiness,
            broker,
            common,
        } = self;
        let handle = server.handle();
        let server_task = tokio::spawn(server);
        tracing::info!(port, "query-api listening");
        let spec = crate::spec();
        let mut consumer = None;
        if let Some(pool) = platform::service::database(&spec, &common, &readiness, &cancel).await {
            let _ = state.pool.set(pool.clone());
            readiness.set_broker(broker.clone());
            // The consumer connects (and reconnects) on its own; the API does not wait for it.
            let options = ConsumerOptions::from_settings(
                contracts::queues::QUERY_API_CONNECTIONS,
                &common.amqp,
            );
            consumer = Some(tokio::spawn(run_consumer(
                broker.clone(),
                options,
                Arc::new(Deauthorizations::new(pool)),
                cancel.clone(),
            )));
            cancel.cancelled().await;
        }
        readiness.start_draining();
        handle.stop(true).await;
        let _ = server_task.await;
        if let Some(consumer) = consumer {
            let _ = consumer.await;
        }
        broker.close().await;
        tracing::info!("query-api stopped");
        Ok(())
    }
}
