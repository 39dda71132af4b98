//! `billingctl sync`: ask the sync worker to backfill a connection, follow a backfill run from
//! `billing.sync_runs`, or list recent runs.

use std::{
    io::IsTerminal as _,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use diesel::{
    ExpressionMethods as _, OptionalExtension as _, QueryDsl as _, SelectableHelper as _,
};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use indicatif::{HumanDuration, ProgressBar, ProgressDrawTarget, ProgressStyle};
use platform::{
    amqp::{Broker, Publisher},
    config::CommonSettings,
};
use sync_worker::{credentials::sync_connections, schema::sync_runs};
use uuid::Uuid;

/// How often a followed run is read again.
const POLL_EVERY: Duration = Duration::from_millis(500);
/// Longest the publish waits for the broker's confirm.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);
/// Consecutive failed polls (×500 ms) before following gives up on the database.
const MAX_POLL_FAILURES: u32 = 20;
/// Without a terminal (CI, logs) a plain line is printed at most this often.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

#[derive(clap::Args)]
pub struct SyncArgs {
    /// The Stripe connection (its id in query-api's connections).
    #[arg(long, required_unless_present = "status")]
    connection: Option<Uuid>,
    /// Refuse unless the connection belongs to this tenant; with --status, only its runs.
    #[arg(long)]
    tenant: Option<String>,
    /// Show the connection's latest backfill until it ends (publishes nothing); exits 0 when it
    /// succeeds and non-zero with its error when it fails.
    #[arg(long, conflicts_with_all = ["follow", "status"])]
    progress: bool,
    /// After publishing, show the backfill's progress like --progress.
    #[arg(long, conflicts_with = "status")]
    follow: bool,
    /// List the most recent runs of every connection (or of --connection) and exit.
    #[arg(long)]
    status: bool,
    /// How many runs --status lists.
    #[arg(long, default_value_t = 20, requires = "status")]
    limit: i64,
}

/// One `billing.sync_runs` row, without the cursor (its layout belongs to the worker).
#[derive(Debug, diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = sync_runs)]
#[diesel(check_for_backend(diesel::pg::Pg))]
struct Run {
    id: Uuid,
    tenant_id: String,
    account_id: String,
    connection_id: Uuid,
    kind: String,
    status: String,
    stage: String,
    objects_done: i64,
    requests: i64,
    objects_expected: Option<i64>,
    attempts: i32,
    error: Option<String>,
    started_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

/// A connection as the sync worker sees it (`integration.sync_connections`).
struct Connection {
    tenant_id: String,
    account_id: String,
    status: String,
}

pub async fn run(common: &CommonSettings, args: SyncArgs) -> anyhow::Result<()> {
    if let Some(tenant) = &args.tenant {
        domain::TenantId::parse(tenant).map_err(|e| anyhow::anyhow!("--tenant: {e}"))?;
    }
    let mut conn = connect(common).await?;
    if args.status {
        return status(
            &mut conn,
            args.connection,
            args.tenant.as_deref(),
            args.limit,
        )
        .await;
    }
    let connection_id = args
        .connection
        .context("--connection is required (or use --status)")?;
    if args.progress {
        return follow(common, conn, connection_id, args.tenant.as_deref(), None).await;
    }

    let connection = lookup(&mut conn, connection_id).await?.with_context(|| {
        format!("unknown connection {connection_id}: no Stripe connection has this id")
    })?;
    if let Some(tenant) = &args.tenant {
        anyhow::ensure!(
            &connection.tenant_id == tenant,
            "connection {connection_id} does not belong to tenant `{tenant}`"
        );
    }
    anyhow::ensure!(
        connection.status == "active",
        "connection {connection_id} is {}: reconnect the Stripe account before syncing it",
        connection.status
    );
    // The database's clock, not ours: a run counts as the answer to this request once the
    // worker writes it after this instant.
    let requested_at: DateTime<Utc> =
        diesel::select(diesel::dsl::sql::<diesel::sql_types::Timestamptz>("now()"))
            .get_result(&mut conn)
            .await
            .context("reading the database clock")?;
    let job_id = publish(common, &connection.tenant_id, connection_id).await?;
    println!(
        "queued backfill {job_id} for connection {connection_id} (tenant {}, account {})",
        connection.tenant_id, connection.account_id
    );
    if args.follow {
        follow(
            common,
            conn,
            connection_id,
            args.tenant.as_deref(),
            Some(requested_at),
        )
        .await?;
    }
    Ok(())
}

async fn connect(common: &CommonSettings) -> anyhow::Result<AsyncPgConnection> {
    AsyncPgConnection::establish(&common.database.url)
        .await
        .context("connecting to Postgres (database.url)")
}

async fn lookup(conn: &mut AsyncPgConnection, id: Uuid) -> anyhow::Result<Option<Connection>> {
    let row: Option<(String, String, String)> = sync_connections::table
        .filter(sync_connections::id.eq(id))
        .select((
            sync_connections::tenant_id,
            sync_connections::account_id,
            sync_connections::status,
        ))
        .first(conn)
        .await
        .optional()
        .context("reading integration.sync_connections (has `billingctl migrate` run?)")?;
    Ok(row.map(|(tenant_id, account_id, status)| Connection {
        tenant_id,
        account_id,
        status,
    }))
}

/// Publishes `SyncJob{BACKFILL}` with a confirm. The sync worker's topology is declared first,
/// so the job waits durably in its queue even when no worker runs yet.
async fn publish(
    common: &CommonSettings,
    tenant: &str,
    connection_id: Uuid,
) -> anyhow::Result<String> {
    let message = query_api::sync_jobs::backfill(tenant, connection_id);
    let broker = Broker::new(common.amqp.clone(), sync_worker::spec().topology);
    let publisher = Publisher::new(broker.clone());
    let outcome = tokio::time::timeout(CONFIRM_TIMEOUT, publisher.publish(&message)).await;
    broker.close().await;
    match outcome {
        Ok(Ok(())) => Ok(message.message_id.clone()),
        Ok(Err(e)) => Err(anyhow::Error::new(e).context("publishing the sync job")),
        Err(_) => anyhow::bail!(
            "publishing the sync job: no confirm from RabbitMQ within {CONFIRM_TIMEOUT:?}"
        ),
    }
}

/// The latest backfill of the connection; with `since`, only one the worker touched after it.
async fn latest(
    conn: &mut AsyncPgConnection,
    connection_id: Uuid,
    since: Option<DateTime<Utc>>,
) -> diesel::QueryResult<Option<Run>> {
    let mut query = sync_runs::table
        .filter(sync_runs::connection_id.eq(connection_id))
        .filter(sync_runs::kind.eq("backfill"))
        .order(sync_runs::started_at.desc())
        .select(Run::as_select())
        .into_boxed();
    if let Some(since) = since {
        query = query.filter(sync_runs::updated_at.ge(since));
    }
    query.first(conn).await.optional()
}

async fn follow(
    common: &CommonSettings,
    conn: AsyncPgConnection,
    connection_id: Uuid,
    tenant: Option<&str>,
    since: Option<DateTime<Utc>>,
) -> anyhow::Result<()> {
    let mut conn = Some(conn);
    let mut view = RunView::new();
    let mut failures = 0;
    loop {
        let polled = match conn.as_mut() {
            Some(c) => latest(c, connection_id, since)
                .await
                .map_err(anyhow::Error::from),
            None => match connect(common).await {
                Ok(mut c) => {
                    let r = latest(&mut c, connection_id, since)
                        .await
                        .map_err(anyhow::Error::from);
                    conn = Some(c);
                    r
                }
                Err(e) => Err(e),
            },
        };
        let run = match polled {
            Ok(run) => {
                failures = 0;
                run
            }
            Err(e) => {
                failures += 1;
                if failures >= MAX_POLL_FAILURES {
                    view.clear();
                    return Err(e.context("reading billing.sync_runs"));
                }
                view.waiting(&format!("database unavailable, retrying: {e:#}"));
                conn = None;
                tokio::time::sleep(POLL_EVERY).await;
                continue;
            }
        };
        let Some(run) = run else {
            if since.is_none() {
                // Nothing to follow: say why, distinguishing an unknown connection.
                let c = conn.as_mut().context("no database connection")?;
                view.clear();
                match lookup(c, connection_id).await? {
                    None => anyhow::bail!(
                        "unknown connection {connection_id}: no Stripe connection has this id"
                    ),
                    Some(_) => anyhow::bail!(
                        "no backfill has run for connection {connection_id} yet; start one with \
                         `billingctl sync --connection {connection_id}`"
                    ),
                }
            }
            view.waiting("queued; waiting for the sync worker to start the backfill");
            tokio::time::sleep(POLL_EVERY).await;
            continue;
        };
        if let Some(tenant) = tenant {
            anyhow::ensure!(
                run.tenant_id == tenant,
                "connection {connection_id} does not belong to tenant `{tenant}`"
            );
        }
        match run.status.as_str() {
            "succeeded" => {
                view.clear();
                println!("{}", summary(&run));
                return Ok(());
            }
            "failed" => {
                view.clear();
                println!("{}", summary(&run));
                anyhow::bail!(
                    "backfill {} of connection {connection_id} failed at stage `{}` (attempt {}): {}",
                    run.id,
                    run.stage,
                    run.attempts,
                    run.error.as_deref().unwrap_or("no error recorded")
                );
            }
            _ => view.show(&run),
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// The progress display: a bar when the run has an estimate, a spinner with counts when not;
/// plain lines every few seconds when stderr is not a terminal.
struct RunView {
    bar: ProgressBar,
    mode: Mode,
    /// First observation of the run by this process: the rate is measured from here, so a
    /// resumed run's idle time does not drag it down.
    first_seen: Option<(Instant, i64)>,
    plain: bool,
    last_plain: Option<Instant>,
}

impl RunView {
    fn new() -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(Mode::Waiting.style());
        bar.enable_steady_tick(Duration::from_millis(120));
        Self {
            bar,
            mode: Mode::Waiting,
            first_seen: None,
            plain: !std::io::stderr().is_terminal(),
            last_plain: None,
        }
    }

    fn waiting(&mut self, what: &str) {
        self.switch(Mode::Waiting);
        self.bar.set_message(what.to_string());
        self.plain_line(what);
    }

    fn show(&mut self, run: &Run) {
        let done = run.objects_done.max(0) as u64;
        let expected = run
            .objects_expected
            .filter(|n| *n > 0)
            .map(|n| (n as u64).max(done));
        let first = *self
            .first_seen
            .get_or_insert((Instant::now(), run.objects_done));
        let rate = observed_rate(first, run.objects_done).or_else(|| average_rate(run));
        let eta = match (expected, rate) {
            (Some(len), Some(rate)) if rate > 0.0 => {
                let left = len.saturating_sub(done) as f64 / rate;
                format!("ETA {}", HumanDuration(Duration::from_secs_f64(left)))
            }
            (Some(_), _) => "ETA unknown".into(),
            (None, _) => "no estimate".into(),
        };
        let rate = rate.map_or_else(|| "–".into(), |r| format!("{r:.1}"));
        let message = format!(
            "{} requests · {rate} objects/s · {eta}{}",
            run.requests,
            if run.attempts > 1 {
                format!(" · attempt {}", run.attempts)
            } else {
                String::new()
            }
        );
        // Everything first, the style last: a tick in between never draws a half-updated line.
        self.bar.set_message(message.clone());
        self.bar.set_prefix(run.stage.clone());
        self.bar.set_position(done);
        match expected {
            Some(len) => {
                self.bar.set_length(len);
                self.switch(Mode::Bar);
            }
            None => {
                self.bar.unset_length();
                self.switch(Mode::Spinner);
            }
        }
        let of = expected.map_or_else(String::new, |n| format!(" of {n}"));
        self.plain_line(&format!(
            "backfill {}: stage {} · {done}{of} objects · {message}",
            run.status, run.stage
        ));
    }

    fn plain_line(&mut self, line: &str) {
        if self.plain && self.last_plain.is_none_or(|t| t.elapsed() >= PLAIN_EVERY) {
            self.last_plain = Some(Instant::now());
            eprintln!("{line}");
        }
    }

    fn switch(&mut self, mode: Mode) {
        if self.mode != mode {
            self.mode = mode;
            self.bar.set_style(mode.style());
        }
    }

    fn clear(&self) {
        self.bar.finish_and_clear();
    }
}

/// What the display shows: no run yet, a run without an estimate, a run with one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Waiting,
    Spinner,
    Bar,
}

impl Mode {
    fn style(self) -> ProgressStyle {
        let template = match self {
            Mode::Waiting => "{spinner} {wide_msg}",
            Mode::Spinner => "{spinner} {prefix:<13} {human_pos} objects · {wide_msg}",
            // The bar takes whatever width the counts and message leave.
            Mode::Bar => "{spinner} {prefix:<13} {human_pos}/{human_len} [{wide_bar}] {msg}",
        };
        ProgressStyle::with_template(template)
            .expect("a valid template")
            .progress_chars("=> ")
    }
}

/// Objects per second since this process first saw the run (after a second of watching).
fn observed_rate((seen_at, seen_done): (Instant, i64), done: i64) -> Option<f64> {
    let secs = seen_at.elapsed().as_secs_f64();
    (secs >= 1.0 && done > seen_done).then(|| (done - seen_done) as f64 / secs)
}

/// Objects per second over the run's whole life, as the worker recorded it.
fn average_rate(run: &Run) -> Option<f64> {
    let secs = (run.updated_at - run.started_at).num_milliseconds() as f64 / 1000.0;
    (secs > 0.0 && run.objects_done > 0).then(|| run.objects_done as f64 / secs)
}

/// One line for a finished run: counts, duration and average rate.
fn summary(run: &Run) -> String {
    let end = run.finished_at.unwrap_or(run.updated_at);
    let took = (end - run.started_at).to_std().unwrap_or_default();
    let expected = run
        .objects_expected
        .map_or_else(String::new, |n| format!(" (estimate {n})"));
    let rate = match took.as_secs_f64() {
        s if s > 0.0 => format!(", {:.1} objects/s", run.objects_done as f64 / s),
        _ => String::new(),
    };
    format!(
        "backfill {} {}: {} objects{expected}, {} requests, {} attempt(s), in {}{rate}",
        run.id,
        run.status,
        run.objects_done,
        run.requests,
        run.attempts,
        HumanDuration(took)
    )
}

async fn status(
    conn: &mut AsyncPgConnection,
    connection: Option<Uuid>,
    tenant: Option<&str>,
    limit: i64,
) -> anyhow::Result<()> {
    let mut query = sync_runs::table
        .order(sync_runs::started_at.desc())
        .limit(limit)
        .select(Run::as_select())
        .into_boxed();
    if let Some(connection) = connection {
        query = query.filter(sync_runs::connection_id.eq(connection));
    }
    if let Some(tenant) = tenant {
        query = query.filter(sync_runs::tenant_id.eq(tenant.to_string()));
    }
    let runs: Vec<Run> = query
        .load(conn)
        .await
        .context("reading billing.sync_runs (has `billingctl migrate` run?)")?;
    if runs.is_empty() {
        println!("no sync runs yet");
        return Ok(());
    }
    let header = [
        "STARTED (UTC)",
        "CONNECTION",
        "TENANT",
        "ACCOUNT",
        "KIND",
        "STATUS",
        "STAGE",
        "OBJECTS",
        "REQUESTS",
        "ATTEMPTS",
        "UPDATED (UTC)",
        "ERROR",
    ];
    let rows: Vec<[String; 12]> = runs
        .iter()
        .map(|r| {
            [
                r.started_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                r.connection_id.to_string(),
                r.tenant_id.clone(),
                r.account_id.clone(),
                r.kind.clone(),
                r.status.clone(),
                r.stage.clone(),
                match r.objects_expected {
                    Some(n) => format!("{}/{n}", r.objects_done),
                    None => r.objects_done.to_string(),
                },
                r.requests.to_string(),
                r.attempts.to_string(),
                r.updated_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                r.error.as_deref().map(truncate).unwrap_or_default(),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    println!("{}", line(&header.map(String::from)));
    for row in &rows {
        println!("{}", line(row));
    }
    Ok(())
}

/// Errors can be long (a whole HTTP body); the table shows the start of the first line.
fn truncate(error: &str) -> String {
    const MAX: usize = 80;
    let first = error.lines().next().unwrap_or_default();
    if first.chars().count() > MAX || first.len() < error.len() {
        let cut: String = first.chars().take(MAX).collect();
        format!("{cut}…")
    } else {
        first.to_string()
    }
}
