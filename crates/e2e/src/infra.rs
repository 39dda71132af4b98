//! Faults in the infrastructure itself: the machine's Postgres and RabbitMQ restarted
//! under the running services, as an upgrade or a node failure would.

use std::process::Command;
use std::time::{Duration, Instant};

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn until_port_answers(port: u16, within: Duration) -> Result<(), String> {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > within {
            return Err(format!("nothing listens on {port} after {within:?}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// The Postgres cluster's version directory (`/etc/postgresql/<version>`).
fn pg_version() -> Result<String, String> {
    std::fs::read_dir("/etc/postgresql")
        .map_err(|e| format!("/etc/postgresql: {e}"))?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .max()
        .ok_or_else(|| "no cluster under /etc/postgresql".to_owned())
}

/// `pg_ctlcluster restart` (fast mode: every connection is cut, in-flight transactions
/// roll back). Returns once the server accepts TCP connections again.
pub fn restart_postgres() -> Result<Duration, String> {
    let started = Instant::now();
    run(
        "pg_ctlcluster",
        &[
            "--skip-systemctl-redirect",
            &pg_version()?,
            "main",
            "restart",
            "-m",
            "fast",
        ],
    )?;
    until_port_answers(5432, Duration::from_secs(60))?;
    Ok(started.elapsed())
}

/// Stops and starts the RabbitMQ application (every connection and channel closed,
/// unconfirmed publishes lost to the publisher, quorum queues recovered from disk).
pub fn restart_rabbitmq() -> Result<Duration, String> {
    let started = Instant::now();
    run("rabbitmqctl", &["stop_app"])?;
    run("rabbitmqctl", &["start_app"])?;
    until_port_answers(5672, Duration::from_secs(60))?;
    Ok(started.elapsed())
}

/// Messages waiting in each queue whose name starts with `prefix` (`rabbitmqctl`).
pub fn queue_depths(prefix: &str) -> Result<Vec<(String, u64)>, String> {
    let out = Command::new("rabbitmqctl")
        .args([
            "list_queues",
            "name",
            "messages",
            "--quiet",
            "--no-table-headers",
        ])
        .output()
        .map_err(|e| format!("rabbitmqctl: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (name, n) = l.split_once('\t')?;
            Some((name.to_owned(), n.trim().parse().ok()?))
        })
        .filter(|(name, _)| name.starts_with(prefix))
        .collect())
}
