//! The ingress process: HTTP listener (webhooks + health) that starts at once, the event store
//! once Postgres answers, and the outbox relay once RabbitMQ answers. Readiness depends on
//! Postgres only: with the broker down, webhooks are still accepted and held in the outbox.

use std::{sync::Arc, time::Duration};

use actix_web::{web, App, HttpServer};
use domain::webhook_signature::Verifier;
use platform::{
    amqp::{Broker, Publisher},
    config::CommonSettings,
    health::{self, Readiness},
    CancellationToken,
};
use tokio::sync::Notify;

use crate::{relay::Relay, routes, settings::IngressSettings, store::EventStore};

/// Shutdown budget, well inside the pod's 45 s grace period (k8s/base/ingress.yaml): requests in flight
/// (webhooks answer within the 5 s client timeout), then the relay's last drain, then the
/// broker close (3 s).
const HTTP_SHUTDOWN_SECS: u64 = 8;
const RELAY_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    state: Arc<routes::WebhookState>,
    readiness: Arc<Readiness>,
    common: CommonSettings,
    settings: IngressSettings,
}

impl Application {
    /// Binds the listener (port 0 picks a free one) without waiting for any dependency.
    pub fn build(common: CommonSettings, settings: IngressSettings) -> anyhow::Result<Self> {
        settings.validate()?;
        let readiness = Readiness::new(true, false);
        let state = Arc::new(routes::WebhookState {
            platform: Verifier::new(
                &settings.platform_secrets,
                settings.signature_tolerance_secs,
            ),
            connect: Verifier::new(&settings.connect_secrets, settings.signature_tolerance_secs),
            default_tenant: settings.default_tenant.clone(),
            max_body_bytes: settings.max_body_bytes,
            body_read_timeout: Duration::from_millis(settings.body_read_timeout_ms),
            store: std::sync::OnceLock::new(),
        });
        let _ = health::prometheus();
        let (app_state, app_readiness) = (state.clone(), readiness.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(app_state.clone()))
                .app_data(web::Data::new(app_readiness.clone()))
                .configure(health::configure)
                .configure(routes::configure)
        })
        .disable_signals()
        .client_request_timeout(Duration::from_secs(5))
        .shutdown_timeout(HTTP_SHUTDOWN_SECS)
        .bind(settings.listen)?;
        let port = server.addrs().first().map(|a| a.port()).unwrap_or_default();
        Ok(Self {
            port,
            server: server.run(),
            state,
            readiness,
            common,
            settings,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn readiness(&self) -> Arc<Readiness> {
        self.readiness.clone()
    }

    /// Serves until `cancel`, then stops accepting, finishes requests and lets the relay
    /// publish what it holds.
    pub async fn run_until_stopped(self, cancel: CancellationToken) -> anyhow::Result<()> {
        let Self {
            port,
            server,
            state,
            readiness,
            common,
            settings,
        } = self;
        let handle = server.handle();
        let server_task = tokio::spawn(server);
        tracing::info!(port, "ingress listening");

        let spec = crate::spec();
        let Some(pool) = platform::service::database(&spec, &common, &readiness, &cancel).await
        else {
            handle.stop(true).await;
            return Ok(());
        };
        let committed = Arc::new(Notify::new());
        let _ = state.store.set(EventStore::start(
            pool.clone(),
            settings.group_commit_max,
            committed.clone(),
        ));

        // The relay connects to the broker on its own schedule: webhooks do not wait for it.
        let broker = Broker::new(common.amqp.clone(), spec.topology.clone());
        readiness.set_broker(broker.clone());
        let relay = Relay {
            pool,
            publisher: Arc::new(Publisher::new(broker.clone())),
            wake: committed,
            batch: settings.outbox_batch,
            poll: Duration::from_millis(settings.outbox_poll_ms),
        };
        let relay_cancel = CancellationToken::new();
        let relay_task = tokio::spawn(relay.run(relay_cancel.clone()));

        cancel.cancelled().await;
        readiness.start_draining();
        handle.stop(true).await;
        let _ = server_task.await;
        // Give the relay one last, bounded chance to publish what the final requests stored;
        // whatever it cannot publish in time stays in the outbox for the next replica.
        relay_cancel.cancel();
        let mut relay_task = relay_task;
        if tokio::time::timeout(RELAY_DRAIN_TIMEOUT, &mut relay_task)
            .await
            .is_err()
        {
            tracing::warn!(
                timeout_ms = RELAY_DRAIN_TIMEOUT.as_millis() as u64,
                "outbox relay still publishing at shutdown; the rest stays in the outbox"
            );
            relay_task.abort();
        }
        broker.close().await;
        tracing::info!("ingress stopped");
        Ok(())
    }
}
