//! Test support shared by every crate's integration tests: a fresh database and a unique
//! RabbitMQ namespace per test, removed again by [`TestEnv::cleanup`].

use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};

use crate::config::{AmqpSettings, CommonSettings, DatabaseSettings, LogFormat, TelemetrySettings};

/// Postgres server the tests use (`TEST_DATABASE_URL`, without a database name).
pub fn test_server_url() -> String {
    std::env::var("TEST_DATABASE_SERVER")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub fn test_amqp_url() -> String {
    std::env::var("TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// One test's private infrastructure.
pub struct TestEnv {
    pub id: String,
    pub database: String,
    pub common: CommonSettings,
}

impl TestEnv {
    /// A fresh database name and AMQP namespace; the database is created by the service
    /// under test (`create_if_missing`), as in dev.
    pub fn new() -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        let database = format!("billing_test_{id}");
        let common = CommonSettings {
            database: DatabaseSettings {
                url: format!("{}/{database}", test_server_url()),
                pool_size: 4,
                create_if_missing: true,
                migrate_on_start: true,
            },
            amqp: AmqpSettings {
                url: test_amqp_url(),
                namespace: format!("test-{id}."),
                prefetch: 16,
                delivery_limit: 3,
                handler_retries: 1,
            },
            telemetry: TelemetrySettings {
                log_filter: "warn".into(),
                log_format: LogFormat::Pretty,
                otlp_endpoint: String::new(),
            },
        };
        Self {
            id,
            database,
            common,
        }
    }

    /// Drops the database (closing its connections) and this namespace's queues and exchanges.
    pub async fn cleanup(&self, brokers: &[&crate::amqp::Broker]) {
        for broker in brokers {
            let _ = broker.delete_topology().await;
            broker.close().await;
        }
        if let Ok(mut admin) =
            AsyncPgConnection::establish(&format!("{}/postgres", test_server_url())).await
        {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.database
            ))
            .execute(&mut admin)
            .await;
        }
    }
}

impl Default for TestEnv {
    fn default() -> Self {
        Self::new()
    }
}

/// A service binary started as its own process, as Kubernetes would run it.
pub struct ServiceProcess {
    child: std::process::Child,
    pub port: u16,
    /// What the service logged so far. A thread drains the pipe continuously: an unread pipe
    /// fills at 64 KiB and then blocks the service's logger, which hangs it mid-shutdown.
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    stderr_reader: Option<std::thread::JoinHandle<()>>,
}

/// Log bytes kept per service (the most recent ones; enough to see why a test failed).
const STDERR_KEPT: usize = 4 << 20;

fn drain_stderr(
    pipe: std::process::ChildStderr,
    into: std::sync::Arc<std::sync::Mutex<String>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        let mut lines = std::io::BufReader::new(pipe);
        let mut line = Vec::new();
        while matches!(lines.read_until(b'\n', &mut line), Ok(n) if n > 0) {
            let mut kept = into.lock().unwrap_or_else(|p| p.into_inner());
            kept.push_str(&String::from_utf8_lossy(&line));
            if kept.len() > STDERR_KEPT {
                let cut = kept.len() - tail(&kept, STDERR_KEPT / 2).len();
                kept.drain(..cut);
            }
            line.clear();
        }
    })
}

/// The last `max` bytes of `text` or fewer, starting on a character boundary.
fn tail(text: &str, max: usize) -> &str {
    let from = (text.len().saturating_sub(max)..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    &text[from..]
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl ServiceProcess {
    /// Starts `binary serve` against `env`, listening on a free port via `BILLING__<SECTION>__LISTEN`.
    pub fn spawn(binary: &str, section: &str, env: &TestEnv, extra_env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let mut cmd = std::process::Command::new(binary);
        cmd.arg("serve")
            .env("DATABASE_URL", &env.common.database.url)
            .env("AMQP_URL", &env.common.amqp.url)
            .env("BILLING__AMQP__NAMESPACE", &env.common.amqp.namespace)
            .env(
                "BILLING__AMQP__DELIVERY_LIMIT",
                env.common.amqp.delivery_limit.to_string(),
            )
            .env(
                format!("BILLING__{}__LISTEN", section.to_uppercase()),
                format!("127.0.0.1:{port}"),
            )
            .env("BILLING__TELEMETRY__LOG_FILTER", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("service binary starts");
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let stderr_reader = child
            .stderr
            .take()
            .map(|pipe| drain_stderr(pipe, stderr.clone()));
        Self {
            child,
            port,
            stderr,
            stderr_reader,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The process id (benchmarks read its peak RSS from `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Polls `path` until it answers `status` (30 s at most).
    pub async fn wait_for_status(&mut self, path: &str, status: u16) -> String {
        let client = reqwest::Client::new();
        for _ in 0..300 {
            if let Ok(Some(exit)) = self.child.try_wait() {
                panic!("service exited early with {exit}: {}", self.stderr());
            }
            if let Ok(resp) = client.get(self.url(path)).send().await {
                if resp.status().as_u16() == status {
                    return resp.text().await.unwrap_or_default();
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("{path} never answered {status}");
    }

    /// Sends SIGTERM and returns the exit status (waits 20 s at most).
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..200 {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.join_stderr_reader();
                return status;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let logged = self.stderr();
        panic!(
            "service did not exit within 20 s of SIGTERM; its last log lines:\n{}",
            tail(&logged, 8000)
        );
    }

    /// Stops the process (SIGTERM) and returns its exit status and everything it logged.
    pub fn terminate_with_stderr(self) -> (std::process::ExitStatus, String) {
        let stderr = self.stderr.clone();
        let status = self.terminate();
        let out = stderr.lock().unwrap_or_else(|p| p.into_inner()).clone();
        (status, out)
    }

    /// `kill -9`: no chance to drain or flush.
    pub fn kill_hard(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// After the process exited: waits until its last log line is read.
    fn join_stderr_reader(&mut self) {
        if let Some(reader) = self.stderr_reader.take() {
            let _ = reader.join();
        }
    }

    /// Everything logged so far; after the process exited, everything it logged.
    fn stderr(&mut self) -> String {
        if self.child.try_wait().is_ok_and(|s| s.is_some()) {
            self.join_stderr_reader();
        }
        self.stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `binary` with a bad value and returns (exit success, stderr).
pub fn run_with_bad_config(binary: &str, key_env: &str, value: &str) -> (bool, String) {
    let out = std::process::Command::new(binary)
        .arg("serve")
        .env(key_env, value)
        .output()
        .expect("binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The lifecycle every service must pass: starts, migrates its schema, declares its topology,
/// reports ready, exports metrics, and exits 0 on SIGTERM; refuses bad config naming the key;
/// stays alive and not-ready while Postgres is unreachable.
pub async fn assert_service_lifecycle(
    binary: &str,
    section: &str,
    spec: &crate::service::ServiceSpec,
    extra_env: &[(&str, &str)],
) {
    // Bad config: the key is named and the process fails.
    let (ok, stderr) = run_with_bad_config(binary, "BILLING__AMQP__PREFETCH", "lots");
    assert!(!ok && stderr.contains("amqp.prefetch"), "stderr: {stderr}");
    let (ok, stderr) = run_with_bad_config(binary, "DATABASE_URL", "mysql://x/y");
    assert!(!ok && stderr.contains("database.url"), "stderr: {stderr}");

    // Healthy start and graceful stop.
    let env = TestEnv::new();
    let mut service = ServiceProcess::spawn(binary, section, &env, extra_env);
    let ready = service.wait_for_status("/readyz", 200).await;
    assert!(ready.contains("\"database\":\"ok\""), "{ready}");
    assert!(
        ready.contains("\"broker\":\"ok\"") || ready.contains("\"broker\":\"unused\""),
        "{ready}"
    );
    service.wait_for_status("/metrics", 200).await;
    let mut conn = AsyncPgConnection::establish(&env.common.database.url)
        .await
        .expect("test database exists");
    #[derive(diesel::QueryableByName)]
    struct Exists {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        exists: bool,
    }
    let rows: Vec<Exists> = diesel::sql_query(format!(
        "SELECT to_regclass('{}.inbox') IS NOT NULL AS exists",
        spec.schema
    ))
    .load(&mut conn)
    .await
    .unwrap();
    assert!(rows[0].exists, "schema {} was not migrated", spec.schema);
    drop(conn);
    let broker = crate::amqp::Broker::new(env.common.amqp.clone(), spec.topology.clone());
    for queue in &spec.topology.queues {
        broker
            .queue_depth(&queue.name)
            .await
            .expect("queue declared by the service");
        broker
            .queue_depth(&queue.dlq_name())
            .await
            .expect("dlq declared by the service");
    }
    let status = service.terminate();
    assert!(status.success(), "exit status after SIGTERM: {status}");

    // Postgres unreachable: alive, not ready, still stops cleanly.
    let mut down_env = extra_env.to_vec();
    down_env.push(("DATABASE_URL", "postgres://postgres@127.0.0.1:1/billing"));
    let mut down = ServiceProcess::spawn(binary, section, &env, &down_env);
    down.wait_for_status("/healthz", 200).await;
    let not_ready = down.wait_for_status("/readyz", 503).await;
    assert!(
        not_ready.contains("\"database\":\"connecting\""),
        "{not_ready}"
    );
    assert!(down.terminate().success());

    // RabbitMQ unreachable: alive; not ready unless the service can work without the broker
    // (ingress keeps accepting webhooks into its outbox).
    let mut no_broker_env = extra_env.to_vec();
    no_broker_env.push(("AMQP_URL", "amqp://guest:guest@127.0.0.1:1/%2f"));
    let mut no_broker = ServiceProcess::spawn(binary, section, &env, &no_broker_env);
    no_broker.wait_for_status("/healthz", 200).await;
    let client = reqwest::Client::new();
    let mut verdict = String::new();
    for _ in 0..100 {
        let resp = client
            .get(no_broker.url("/readyz"))
            .send()
            .await
            .expect("readyz answers");
        let (status, body) = (
            resp.status().as_u16(),
            resp.text().await.unwrap_or_default(),
        );
        if (status == 503 && body.contains("\"broker\":\"connecting\""))
            || (status == 200 && body.contains("\"broker\":\"unused\""))
        {
            verdict = body;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        !verdict.is_empty(),
        "readiness must reflect the missing broker"
    );
    assert!(no_broker.terminate().success());

    env.cleanup(&[&broker]).await;
}

/// A TCP forwarder in front of Postgres or RabbitMQ that a test can take down and bring back,
/// to show behaviour while a dependency is unreachable without disturbing other tests.
pub struct TcpProxy {
    pub port: u16,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    generation: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
}

impl TcpProxy {
    pub async fn start(upstream: std::net::SocketAddr) -> Self {
        use std::sync::{atomic::AtomicBool, Arc};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let (generation, _) = tokio::sync::watch::channel(0u64);
        let generation = Arc::new(generation);
        let (up2, gen2) = (up.clone(), generation.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if !std::sync::atomic::AtomicBool::load(&up2, std::sync::atomic::Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let mut killed = gen2.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = killed.changed() => {}
                    }
                });
            }
        });
        Self {
            port,
            up,
            generation,
        }
    }

    /// Drops every open connection and refuses new ones.
    pub fn down(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    pub fn up(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Installs tracing and the trace-context propagator once per test process, as `main` does.
pub fn init_telemetry() {
    static GUARD: std::sync::OnceLock<Option<crate::telemetry::TelemetryGuard>> =
        std::sync::OnceLock::new();
    GUARD.get_or_init(|| {
        let settings = TelemetrySettings {
            log_filter: "warn".into(),
            log_format: LogFormat::Pretty,
            otlp_endpoint: String::new(),
        };
        crate::telemetry::init("test", &settings).ok()
    });
}

/// Waits (10 s at most) until an in-process service has reached its database.
pub async fn wait_for_database(readiness: &crate::health::Readiness) {
    for _ in 0..200 {
        if readiness.pool().is_some() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
