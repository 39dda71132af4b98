//! `/healthz` (the process is alive), `/readyz` (Postgres and RabbitMQ answer, not draining)
//! and `/metrics` (Prometheus text), mounted on every service's listener.

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc, OnceLock,
};

use actix_web::{web, HttpResponse};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::Serialize;

use crate::{amqp::Broker, db::PgPool};

/// What a service depends on; filled in as start-up reaches each dependency.
#[derive(Default)]
pub struct Readiness {
    pool: OnceLock<PgPool>,
    broker: OnceLock<Arc<Broker>>,
    needs_db: bool,
    needs_broker: bool,
    draining: AtomicBool,
}

#[derive(Debug, Serialize)]
pub struct ReadyReport {
    pub ready: bool,
    pub database: &'static str,
    pub broker: &'static str,
    pub draining: bool,
}

impl Readiness {
    pub fn new(needs_db: bool, needs_broker: bool) -> Arc<Self> {
        Arc::new(Self {
            needs_db,
            needs_broker,
            ..Default::default()
        })
    }

    pub fn set_pool(&self, pool: PgPool) {
        let _ = self.pool.set(pool);
    }

    pub fn set_broker(&self, broker: Arc<Broker>) {
        let _ = self.broker.set(broker);
    }

    pub fn pool(&self) -> Option<&PgPool> {
        self.pool.get()
    }

    pub fn broker(&self) -> Option<&Arc<Broker>> {
        self.broker.get()
    }

    /// Shutdown began: report not-ready so the load balancer stops sending work.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub async fn check(&self) -> ReadyReport {
        let database = match (self.needs_db, self.pool.get()) {
            (false, _) => "unused",
            (true, None) => "connecting",
            (true, Some(pool)) if crate::db::ping(pool).await => "ok",
            (true, Some(_)) => "down",
        };
        let broker = match (self.needs_broker, self.broker.get()) {
            (false, _) => "unused",
            (true, None) => "connecting",
            (true, Some(b)) if b.is_connected() => "ok",
            (true, Some(_)) => "down",
        };
        let draining = self.draining.load(Ordering::SeqCst);
        let ready =
            !draining && matches!(database, "ok" | "unused") && matches!(broker, "ok" | "unused");
        ReadyReport {
            ready,
            database,
            broker,
            draining,
        }
    }
}

/// The process-wide Prometheus recorder (installed once; tests start many services per process).
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder is installed (a test harness); metrics then go there.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Mounts the three endpoints. Needs `web::Data<Arc<Readiness>>` in the app.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics_text));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

async fn readyz(readiness: web::Data<Arc<Readiness>>) -> HttpResponse {
    let report = readiness.check().await;
    if report.ready {
        HttpResponse::Ok().json(report)
    } else {
        HttpResponse::ServiceUnavailable().json(report)
    }
}

async fn metrics_text() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(prometheus().render())
}
