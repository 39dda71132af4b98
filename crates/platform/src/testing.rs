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
    /// What the service logged so far, stdout (where its logger writes) and stderr (panics,
    /// errors before the logger is up) line by line. A thread drains each pipe continuously:
    /// an unread pipe fills at 64 KiB and then blocks the service's logger, which hangs it
    /// mid-shutdown.
    logged: std::sync::Arc<std::sync::Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

/// Log bytes kept per service (the most recent ones; enough to see why a test failed).
const STDERR_KEPT: usize = 4 << 20;

/// When set, every service a test starts also appends its log lines to
/// `<dir>/<binary>-<pid>.log`, and the secrets the harness hands it to `<dir>/canaries.txt`:
/// `make test` then runs `scripts/log-scan.py` over the directory to prove no secret was logged.
pub const LOG_DIR_ENV: &str = "BILLING_TEST_LOG_DIR";

/// The log level of services started by tests: production's (`config/default.toml`), so the
/// log scan sees what a real deployment would write. Benchmarks pass `warn` themselves.
pub const SERVICE_LOG_FILTER: &str = "info,lapin=warn,actix_server=warn";

/// Shorter values are not worth a canary: they would match innocent text.
const CANARY_MIN_LEN: usize = 8;

/// The secret values among the environment handed to a service: every value (and each
/// `id:secret` / comma-separated part of it) of a variable whose name says SECRET, KEY, TOKEN
/// or PASSWORD, and any part shaped like a Stripe key or webhook secret whatever its name.
pub fn secret_values(env: &[(&str, &str)]) -> Vec<String> {
    let mut found = Vec::new();
    let mut keep = |value: &str| {
        let value = value.trim();
        if value.len() >= CANARY_MIN_LEN && !found.iter().any(|f| f == value) {
            found.push(value.to_string());
        }
    };
    for (name, value) in env {
        let name = name.to_ascii_uppercase();
        let named = ["SECRET", "KEY", "TOKEN", "PASSWORD"]
            .iter()
            .any(|word| name.contains(word));
        if named {
            keep(value);
        }
        for part in value.split(|c: char| c == ',' || c == ';' || c.is_whitespace()) {
            let secret = part.split_once(':').map_or(part, |(_, secret)| secret);
            let shaped = ["whsec_", "sk_", "rk_"]
                .iter()
                .any(|prefix| part.starts_with(prefix) || secret.starts_with(prefix));
            if named || shaped {
                keep(part);
                keep(secret);
            }
        }
    }
    found
}

/// The log directory of this test run (`LOG_DIR_ENV`), if any.
fn log_dir() -> Option<std::path::PathBuf> {
    std::env::var_os(LOG_DIR_ENV)
        .filter(|d| !d.is_empty())
        .map(Into::into)
}

/// Opens `dir/file` for appending, creating `dir`. An unusable directory fails the test: the
/// scan would otherwise pass on logs that were never written.
fn append_to(dir: &std::path::Path, file: &str) -> std::fs::File {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{LOG_DIR_ENV}={}: {e}", dir.display()));
    let path = dir.join(file);
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Appends the secrets of `env` to `dir/canaries.txt`. One `write` per value: with
/// `O_APPEND`, tests running in parallel cannot interleave inside a line.
fn record_canaries(dir: &std::path::Path, env: &[(&str, &str)]) {
    use std::io::Write as _;
    let secrets = secret_values(env);
    if secrets.is_empty() {
        return;
    }
    let mut file = append_to(dir, "canaries.txt");
    for secret in secrets.iter().filter(|s| !s.contains('\n')) {
        file.write_all(format!("{secret}\n").as_bytes())
            .expect("canary written");
    }
}

/// `dir/<binary file name>-<pid>.log`.
fn process_log(dir: &std::path::Path, binary: &str, pid: u32) -> std::fs::File {
    let name = std::path::Path::new(binary)
        .file_name()
        .map_or_else(|| binary.into(), |n| n.to_string_lossy());
    append_to(dir, &format!("{name}-{pid}.log"))
}

fn drain(
    pipe: impl std::io::Read + Send + 'static,
    into: std::sync::Arc<std::sync::Mutex<String>>,
    mut copy: Option<std::fs::File>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        use std::io::{BufRead as _, Write as _};
        let mut lines = std::io::BufReader::new(pipe);
        let mut line = Vec::new();
        while matches!(lines.read_until(b'\n', &mut line), Ok(n) if n > 0) {
            // Unbuffered, one write per line: a test process may exit without joining us.
            if let Some(file) = copy.as_mut() {
                if file.write_all(&line).is_err() {
                    copy = None;
                }
            }
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
            .env("BILLING__TELEMETRY__LOG_FILTER", SERVICE_LOG_FILTER)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let handed = [
            ("DATABASE_URL", env.common.database.url.as_str()),
            ("AMQP_URL", env.common.amqp.url.as_str()),
        ];
        let log_dir = log_dir();
        if let Some(dir) = &log_dir {
            record_canaries(dir, &[&handed[..], extra_env].concat());
        }
        let mut child = cmd.spawn().expect("service binary starts");
        let logged = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let copy = log_dir.map(|dir| process_log(&dir, binary, child.id()));
        let copy_of = |copy: &Option<std::fs::File>| {
            copy.as_ref()
                .map(|file| file.try_clone().expect("log file handle"))
        };
        let mut readers = Vec::new();
        if let Some(pipe) = child.stdout.take() {
            readers.push(drain(pipe, logged.clone(), copy_of(&copy)));
        }
        if let Some(pipe) = child.stderr.take() {
            readers.push(drain(pipe, logged.clone(), copy));
        }
        Self {
            child,
            port,
            logged,
            readers,
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
                panic!("service exited early with {exit}: {}", self.logged());
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
                self.join_readers();
                return status;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let logged = self.logged();
        panic!(
            "service did not exit within 20 s of SIGTERM; its last log lines:\n{}",
            tail(&logged, 8000)
        );
    }

    /// Stops the process (SIGTERM) and returns its exit status and everything it logged
    /// (stdout and stderr).
    pub fn terminate_with_stderr(self) -> (std::process::ExitStatus, String) {
        let logged = self.logged.clone();
        let status = self.terminate();
        let out = logged.lock().unwrap_or_else(|p| p.into_inner()).clone();
        (status, out)
    }

    /// `kill -9`: no chance to drain or flush.
    pub fn kill_hard(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// After the process exited: waits until its last log line is read.
    fn join_readers(&mut self) {
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }

    /// Everything logged so far; after the process exited, everything it logged.
    fn logged(&mut self) -> String {
        if self.child.try_wait().is_ok_and(|s| s.is_some()) {
            self.join_readers();
        }
        self.logged
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
    let log_dir = log_dir();
    if let Some(dir) = &log_dir {
        record_canaries(dir, &[(key_env, value)]);
    }
    let child = std::process::Command::new(binary)
        .arg("serve")
        .env(key_env, value)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("binary runs");
    let pid = child.id();
    let out = child.wait_with_output().expect("binary runs");
    if let Some(dir) = &log_dir {
        use std::io::Write as _;
        let mut file = process_log(dir, binary, pid);
        let _ = file.write_all(&out.stdout);
        let _ = file.write_all(&out.stderr);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_by_name_and_by_shape() {
        let found = secret_values(&[
            ("STRIPE_WEBHOOK_SECRET", "whsec_e2e_only"),
            (
                "BILLING_MASTER_KEYS",
                "k1:AAAAbbbbCCCCdddd=,k2:EEEEffffGGGGhhhh=",
            ),
            ("BILLING_JWT_SECRET", "short"),
            ("STRIPE_API_BASE", "http://127.0.0.1:4242"),
            ("BILLING__QUERY_API__STRIPE", "rk_test_fake_but_long"),
            (
                "BILLING__INGRESS__DEFAULT_TENANT",
                "tenant_acme_long_enough",
            ),
        ]);
        assert_eq!(
            found,
            [
                "whsec_e2e_only",
                "k1:AAAAbbbbCCCCdddd=,k2:EEEEffffGGGGhhhh=",
                "k1:AAAAbbbbCCCCdddd=",
                "AAAAbbbbCCCCdddd=",
                "k2:EEEEffffGGGGhhhh=",
                "EEEEffffGGGGhhhh=",
                "rk_test_fake_but_long",
            ]
        );
    }

    #[test]
    fn stderr_lines_are_kept_and_copied_to_the_log_dir() {
        let dir = std::env::temp_dir().join(format!("billing-log-{}", uuid::Uuid::new_v4()));
        let mut child = std::process::Command::new("sh")
            .args(["-c", "echo first >&2; echo second >&2"])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let kept = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let copy = process_log(&dir, "/some/where/matcher", child.id());
        let reader = drain(child.stderr.take().unwrap(), kept.clone(), Some(copy));
        child.wait().unwrap();
        reader.join().unwrap();
        record_canaries(&dir, &[("BILLING_JWT_SECRET", "a-long-jwt-secret")]);

        let logged =
            std::fs::read_to_string(dir.join(format!("matcher-{}.log", child.id()))).unwrap();
        assert_eq!(logged, "first\nsecond\n");
        assert_eq!(*kept.lock().unwrap(), logged);
        let canaries = std::fs::read_to_string(dir.join("canaries.txt")).unwrap();
        assert_eq!(canaries, "a-long-jwt-secret\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
