//! Starting the fake: in-process for tests (`FakeServer::start`) or from the binary.

use crate::config::FakeConfig;
use crate::limits::{Faults, RateLimiter};
use crate::model::Event;
use crate::store::State;
use crate::webhook::{StatsSnapshot, WebhookQueue};
use actix_web::{web, App as ActixApp, HttpServer};
use parking_lot::RwLock;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The state every handler shares.
pub type SharedState = Arc<RwLock<State>>;

/// Everything a request handler needs.
pub struct App {
    pub state: SharedState,
    pub config: FakeConfig,
    pub limiter: RateLimiter,
    pub faults: Faults,
    /// Latency added to every `/v1` answer (ms); starts at `config.latency_ms`, changeable
    /// while serving (`/_admin/faults`).
    pub latency_ms: AtomicU64,
    pub webhooks: WebhookQueue,
    request_seq: AtomicU64,
}

impl App {
    /// Builds the app (seeding if configured). Must run inside a tokio runtime when
    /// webhooks are configured (the delivery task is spawned here).
    pub fn new(config: FakeConfig) -> App {
        let state = initial_state(&config);
        App::with_state(config, state)
    }

    /// Builds the app around an existing state (e.g. one generated beforehand).
    pub fn with_state(config: FakeConfig, state: State) -> App {
        App {
            state: Arc::new(RwLock::new(state)),
            limiter: RateLimiter::new(config.rate_limit),
            faults: Faults::new(config.error_rate, config.fault_seed),
            latency_ms: AtomicU64::new(config.latency_ms),
            webhooks: WebhookQueue::start(config.webhooks.clone()),
            request_seq: AtomicU64::new(0),
            config,
        }
    }

    pub fn next_request_id(&self) -> String {
        let n = self.request_seq.fetch_add(1, Ordering::Relaxed);
        format!("req_{n:014}")
    }

    /// Stores events on their account and queues them for delivery.
    pub fn commit(&self, state: &mut State, account: &str, mut events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        for e in &mut events {
            e.pending_webhooks = i64::from(self.webhooks.has_target(e.account.is_some()));
        }
        self.webhooks.enqueue(&events);
        if let Some(book) = state.books.get_mut(account) {
            for e in events {
                book.events.insert(e);
            }
        }
    }
}

/// The state a config starts with: a seeded book or an empty platform.
pub fn initial_state(config: &FakeConfig) -> State {
    let wall = chrono::Utc::now().timestamp();
    match &config.seed {
        Some(opts) => {
            let mut opts = opts.clone();
            if opts.now.is_none() {
                opts.now = Some(config.now.unwrap_or(wall));
            }
            let (mut state, truth) = crate::seed::generate_with(&opts);
            state.truth = serde_json::to_value(&truth).ok();
            state
        }
        None => State::new(config.now.unwrap_or(wall), 1),
    }
}

/// A running fake. Dropping it does not stop the server; call [`FakeServer::stop`].
pub struct FakeServer {
    addr: SocketAddr,
    app: Arc<App>,
    handle: actix_web::dev::ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl FakeServer {
    /// Binds `config.listen` (use port 0 in tests), serves in the background on the
    /// current tokio runtime and returns once the socket is bound.
    pub async fn start(config: FakeConfig) -> anyhow::Result<FakeServer> {
        let state = initial_state(&config);
        FakeServer::start_with_state(config, state).await
    }

    /// Like [`FakeServer::start`] but serves a state built by the caller
    /// (`seed::generate_with`, or `State::new` plus objects).
    pub async fn start_with_state(
        config: FakeConfig,
        mut state: State,
    ) -> anyhow::Result<FakeServer> {
        let salt = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default()
            ^ u64::from(std::process::id());
        state.ids.salt(salt);
        let listen = config.listen.clone();
        let workers = config.workers.max(1);
        let prewarm = config.prewarm;
        if config.realtime_clock {
            state.realtime = Some((state.clock, std::time::Instant::now()));
        }
        let app = Arc::new(App::with_state(config, state));
        if prewarm {
            let state = app.state.clone();
            std::thread::spawn(move || {
                let s = state.read();
                for b in s.books.values() {
                    b.warm();
                }
            });
        }
        let data = web::Data::new(app.clone());
        let server = HttpServer::new(move || {
            ActixApp::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(4 * 1024 * 1024))
                .default_service(web::to(crate::api::handle))
        })
        .workers(workers)
        .disable_signals()
        .bind(&listen)?;
        let addr = server
            .addrs()
            .first()
            .copied()
            .ok_or_else(|| anyhow::anyhow!("no address bound for {listen}"))?;
        let server = server.run();
        let handle = server.handle();
        let task = tokio::spawn(server);
        Ok(FakeServer {
            addr,
            app,
            handle,
            task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/` (with the trailing slash async-stripe wants).
    pub fn base_url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    pub fn state(&self) -> SharedState {
        self.app.state.clone()
    }

    pub fn app(&self) -> Arc<App> {
        self.app.clone()
    }

    /// The truth file of the seeded book, if the fake was seeded.
    pub fn truth(&self) -> Option<serde_json::Value> {
        self.app.state.read().truth.clone()
    }

    pub fn webhook_stats(&self) -> StatsSnapshot {
        self.app.webhooks.stats.snapshot()
    }

    /// Stops accepting connections and waits for the server to finish.
    pub async fn stop(self) {
        self.handle.stop(true).await;
        let _ = self.task.await;
    }

    /// Serves until the process is interrupted (used by the binary).
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let handle = self.handle.clone();
        tokio::select! {
            r = self.task => { r??; }
            _ = tokio::signal::ctrl_c() => { handle.stop(true).await; }
        }
        Ok(())
    }
}
