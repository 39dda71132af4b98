//! `stripe-fake` binary: `serve`, `seed`, `trigger`, `bench`.

use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};
use std::path::PathBuf;
use stripe_fake::bench::{self, BenchOptions};
use stripe_fake::{FakeConfig, FakeServer, SeedOptions, WebhookConfig};

#[derive(Parser)]
#[command(
    name = "stripe-fake",
    about = "A stateful, rate-limited, webhook-sending stand-in for Stripe's API"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve the fake API.
    Serve(ServeArgs),
    /// Generate a book and write its truth file (and optionally a state dump).
    Seed(SeedArgs),
    /// Call an admin trigger on a running fake.
    Trigger(TriggerArgs),
    /// Measure list-page throughput and 10k-customer seed time.
    Bench(BenchArgs),
}

#[derive(Args)]
struct ServeArgs {
    #[arg(long, env = "STRIPE_FAKE_LISTEN", default_value = "127.0.0.1:12111")]
    listen: String,
    /// Requests per second (token bucket); 0 = off.
    #[arg(long, env = "STRIPE_FAKE_RATE_LIMIT", default_value_t = 100)]
    rate_limit: u32,
    #[arg(long, env = "STRIPE_FAKE_LATENCY_MS", default_value_t = 0)]
    latency_ms: u64,
    /// Fraction of /v1 requests answered 500/503.
    #[arg(long, env = "STRIPE_FAKE_ERROR_RATE", default_value_t = 0.0)]
    error_rate: f64,
    #[arg(long, env = "STRIPE_FAKE_FAULT_SEED", default_value_t = 1)]
    fault_seed: u64,
    /// Accepted API keys (repeatable); default sk_test_fake and rk_test_fake.
    #[arg(long = "api-key", env = "STRIPE_FAKE_API_KEYS", value_delimiter = ',')]
    api_keys: Vec<String>,
    #[arg(long, env = "STRIPE_FAKE_CONNECT_CLIENT_ID", default_value = "ca_fake")]
    connect_client_id: String,
    #[arg(long, env = "STRIPE_FAKE_WEBHOOK_URL")]
    webhook_url: Option<String>,
    #[arg(long, env = "STRIPE_FAKE_WEBHOOK_SECRET", default_value = "whsec_fake")]
    webhook_secret: String,
    #[arg(long, env = "STRIPE_FAKE_CONNECT_WEBHOOK_URL")]
    connect_webhook_url: Option<String>,
    #[arg(
        long,
        env = "STRIPE_FAKE_CONNECT_WEBHOOK_SECRET",
        default_value = "whsec_fake_connect"
    )]
    connect_webhook_secret: String,
    #[arg(
        long,
        env = "STRIPE_FAKE_WEBHOOK_DUPLICATE_RATE",
        default_value_t = 0.0
    )]
    webhook_duplicate_rate: f64,
    /// Deliveries of a duplicated event (Stripe may retry an event several times).
    #[arg(
        long,
        env = "STRIPE_FAKE_WEBHOOK_DUPLICATE_COPIES",
        default_value_t = 2
    )]
    webhook_duplicate_copies: u32,
    #[arg(long, env = "STRIPE_FAKE_WEBHOOK_DROP_RATE", default_value_t = 0.0)]
    webhook_drop_rate: f64,
    /// Webhook deliveries in flight at once (Stripe sends concurrently, in no promised order).
    #[arg(long, env = "STRIPE_FAKE_WEBHOOK_CONCURRENCY", default_value_t = 1)]
    webhook_concurrency: usize,
    /// Deliver queued events in a random order.
    #[arg(long, env = "STRIPE_FAKE_WEBHOOK_SHUFFLE")]
    webhook_shuffle: bool,
    /// Add deprecated pre-basil fields (subscription.current_period_*, invoice.subscription, ...).
    #[arg(long, env = "STRIPE_FAKE_LEGACY_FIELDS")]
    legacy_fields: bool,
    /// Do not serve /_admin (triggers, reseed).
    #[arg(long, env = "STRIPE_FAKE_NO_ADMIN")]
    no_admin: bool,
    #[arg(long, env = "STRIPE_FAKE_SEED_CUSTOMERS")]
    seed_customers: Option<usize>,
    #[arg(long, env = "STRIPE_FAKE_SEED", default_value_t = 1)]
    seed: u64,
    /// Clock start / seed "now" (unix seconds); default: wall clock.
    #[arg(long, env = "STRIPE_FAKE_NOW")]
    now: Option<i64>,
    /// Keep the clock still between `advance_time` calls (default: it follows real time,
    /// as Stripe's does, so later changes get later event times).
    #[arg(long, env = "STRIPE_FAKE_FROZEN_CLOCK")]
    frozen_clock: bool,
    #[arg(long, env = "STRIPE_FAKE_CONNECTED_ACCOUNTS", default_value_t = 0)]
    connected_accounts: usize,
    #[arg(long, env = "STRIPE_FAKE_CONNECTED_CUSTOMERS", default_value_t = 20)]
    connected_customers: usize,
    /// Write the seeded book's truth file here.
    #[arg(long, env = "STRIPE_FAKE_TRUTH")]
    truth: Option<PathBuf>,
    #[arg(long, env = "STRIPE_FAKE_WORKERS", default_value_t = 2)]
    workers: usize,
}

#[derive(Args)]
struct SeedArgs {
    #[arg(long, default_value_t = 100)]
    customers: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The book's "now" (unix seconds); default 2026-01-01T00:00:00Z.
    #[arg(long)]
    now: Option<i64>,
    #[arg(long, default_value_t = 0)]
    connected_accounts: usize,
    #[arg(long, default_value_t = 20)]
    connected_customers: usize,
    /// Dump every object of every account as JSON.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Truth file path (default: stdout summary only).
    #[arg(long)]
    truth: Option<PathBuf>,
}

#[derive(Args)]
struct TriggerArgs {
    /// fail_payment | pay_invoice | update_subscription | request_cancel | cancel |
    /// expire_card | dispute (--charge or --customer, --reason, --inquiry) |
    /// submit_dispute_evidence (--dispute or --customer, --text: needs_response →
    /// under_review) | close_dispute (--dispute or --customer, --outcome won|lost, or
    /// warning_closed for an inquiry) | advance_time
    kind: String,
    #[arg(
        long,
        env = "STRIPE_FAKE_URL",
        default_value = "http://127.0.0.1:12111"
    )]
    fake: String,
    #[arg(long)]
    account: Option<String>,
    #[arg(long)]
    customer: Option<String>,
    #[arg(long)]
    subscription: Option<String>,
    #[arg(long)]
    invoice: Option<String>,
    #[arg(long)]
    price: Option<String>,
    #[arg(long)]
    quantity: Option<i64>,
    #[arg(long)]
    decline_code: Option<String>,
    /// fail_payment: keep the card failing afterwards.
    #[arg(long)]
    sticky: bool,
    /// request_cancel: undo a requested cancellation.
    #[arg(long)]
    undo: bool,
    #[arg(long)]
    payment_method: Option<String>,
    #[arg(long)]
    exp_month: Option<i64>,
    #[arg(long)]
    exp_year: Option<i64>,
    #[arg(long)]
    charge: Option<String>,
    #[arg(long)]
    reason: Option<String>,
    /// dispute: open an inquiry (warning_needs_response) instead of a chargeback.
    #[arg(long)]
    inquiry: bool,
    #[arg(long)]
    dispute: Option<String>,
    /// submit_dispute_evidence: the evidence text.
    #[arg(long)]
    text: Option<String>,
    /// close_dispute: won | lost | warning_closed.
    #[arg(long)]
    outcome: Option<String>,
    #[arg(long)]
    days: Option<i64>,
    #[arg(long)]
    seconds: Option<i64>,
    #[arg(long)]
    to: Option<i64>,
}

#[derive(Args)]
struct BenchArgs {
    #[arg(long, default_value_t = 10_000)]
    customers: usize,
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Comma-separated resources to page through.
    #[arg(
        long,
        default_value = "customers,subscriptions,invoices",
        value_delimiter = ','
    )]
    resources: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    match cli.cmd {
        Cmd::Serve(a) => rt.block_on(serve(a)),
        Cmd::Seed(a) => seed(a),
        Cmd::Trigger(a) => rt.block_on(trigger(a)),
        Cmd::Bench(a) => rt.block_on(run_bench(a)),
    }
}

async fn serve(a: ServeArgs) -> anyhow::Result<()> {
    let mut config = FakeConfig {
        listen: a.listen,
        connect_client_id: a.connect_client_id,
        rate_limit: a.rate_limit,
        latency_ms: a.latency_ms,
        error_rate: a.error_rate,
        fault_seed: a.fault_seed,
        legacy_fields: a.legacy_fields,
        admin_enabled: !a.no_admin,
        workers: a.workers,
        now: a.now,
        realtime_clock: !a.frozen_clock,
        prewarm: true,
        webhooks: WebhookConfig {
            url: a.webhook_url,
            connect_url: a.connect_webhook_url,
            secret: a.webhook_secret,
            connect_secret: a.connect_webhook_secret,
            duplicate_rate: a.webhook_duplicate_rate,
            duplicate_copies: a.webhook_duplicate_copies,
            drop_rate: a.webhook_drop_rate,
            shuffle: a.webhook_shuffle,
            concurrency: a.webhook_concurrency,
            ..Default::default()
        },
        seed: a.seed_customers.map(|n| SeedOptions {
            customers: n,
            seed: a.seed,
            now: a.now,
            connected_accounts: a.connected_accounts,
            connected_customers: a.connected_customers,
        }),
        ..Default::default()
    };
    if !a.api_keys.is_empty() {
        config.api_keys = a.api_keys;
    }
    let fake = FakeServer::start(config).await?;
    if let (Some(path), Some(truth)) = (&a.truth, fake.truth()) {
        std::fs::write(path, serde_json::to_vec_pretty(&truth)?)?;
        tracing::info!(path = %path.display(), "truth file written");
    }
    tracing::info!(addr = %fake.addr(), api_version = stripe_fake::API_VERSION, "stripe-fake listening");
    fake.run_until_stopped().await
}

fn seed(a: SeedArgs) -> anyhow::Result<()> {
    let t0 = std::time::Instant::now();
    let (state, truth) = stripe_fake::generate_with(&SeedOptions {
        customers: a.customers,
        seed: a.seed,
        now: a.now,
        connected_accounts: a.connected_accounts,
        connected_customers: a.connected_customers,
    });
    let took = t0.elapsed().as_secs_f64();
    if let Some(path) = &a.truth {
        std::fs::write(path, serde_json::to_vec_pretty(&truth)?)?;
    }
    if let Some(path) = &a.out {
        let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
        use std::io::Write;
        write!(f, "{{\"accounts\":[")?;
        let mut accounts: Vec<_> = state.books.keys().cloned().collect();
        accounts.sort();
        for (n, acct) in accounts.iter().enumerate() {
            let b = &state.books[acct];
            if n > 0 {
                write!(f, ",")?;
            }
            fn dump<T: stripe_fake::model::StripeObject>(
                f: &mut impl Write,
                name: &str,
                c: &stripe_fake::store::Collection<T>,
            ) -> anyhow::Result<()> {
                write!(f, ",\"{name}\":[")?;
                for (i, id) in c.ids().iter().enumerate() {
                    if i > 0 {
                        write!(f, ",")?;
                    }
                    if let Some(o) = c.get(id) {
                        serde_json::to_writer(&mut *f, o)?;
                    }
                }
                write!(f, "]")?;
                Ok(())
            }
            write!(f, "{{\"account\":")?;
            serde_json::to_writer(&mut f, &b.account)?;
            dump(&mut f, "customers", &b.customers)?;
            dump(&mut f, "products", &b.products)?;
            dump(&mut f, "prices", &b.prices)?;
            dump(&mut f, "coupons", &b.coupons)?;
            dump(&mut f, "payment_methods", &b.payment_methods)?;
            dump(&mut f, "subscriptions", &b.subscriptions)?;
            dump(&mut f, "invoices", &b.invoices)?;
            dump(&mut f, "payment_intents", &b.payment_intents)?;
            dump(&mut f, "charges", &b.charges)?;
            write!(f, "}}")?;
        }
        write!(f, "]}}")?;
        f.flush()?;
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "customers": truth.customer_count,
            "seed": truth.seed,
            "now": truth.now,
            "seconds": took,
            "totals": truth.totals,
        }))?
    );
    Ok(())
}

async fn trigger(a: TriggerArgs) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut body = serde_json::Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            body.insert(k.to_string(), v);
        }
    };
    put("account", a.account.map(Value::from));
    put("customer", a.customer.map(Value::from));
    put("subscription", a.subscription.map(Value::from));
    put("invoice", a.invoice.map(Value::from));
    put("price", a.price.map(Value::from));
    put("quantity", a.quantity.map(Value::from));
    put("decline_code", a.decline_code.map(Value::from));
    put("sticky", a.sticky.then_some(Value::from(true)));
    put("undo", a.undo.then_some(Value::from(true)));
    put("payment_method", a.payment_method.map(Value::from));
    put("exp_month", a.exp_month.map(Value::from));
    put("exp_year", a.exp_year.map(Value::from));
    put("charge", a.charge.map(Value::from));
    put("reason", a.reason.map(Value::from));
    put("inquiry", a.inquiry.then_some(Value::from(true)));
    put("dispute", a.dispute.map(Value::from));
    put("text", a.text.map(Value::from));
    put("outcome", a.outcome.map(Value::from));
    put("days", a.days.map(Value::from));
    put("seconds", a.seconds.map(Value::from));
    put("to", a.to.map(Value::from));
    let url = format!("{}/_admin/trigger/{}", a.fake.trim_end_matches('/'), a.kind);
    let resp = reqwest::Client::new()
        .post(&url)
        .json(&Value::Object(body))
        .send()
        .await?;
    let status = resp.status();
    let text = resp.text().await?;
    println!("{text}");
    if !status.is_success() {
        anyhow::bail!("{url} answered {status}");
    }
    Ok(())
}

async fn run_bench(a: BenchArgs) -> anyhow::Result<()> {
    let opts = BenchOptions {
        customers: a.customers,
        seconds: a.seconds,
        clients: a.clients,
        resources: a.resources,
        ..Default::default()
    };
    let r = bench::run(&opts).await?;
    println!(
        "INFO seed customers={} invoices={} seed_s={:.3} peak_rss_mib={:.0} warm_cache_s={:.3}",
        opts.customers, r.invoices, r.seed_seconds, r.seed_peak_rss_mib, r.warm_seconds
    );
    for (res, rate) in &r.per_resource {
        println!("INFO pages_per_s {res}={rate:.0}");
    }
    println!(
        "INFO headline={} pages={} clients={} seconds={}",
        opts.resources
            .first()
            .map(String::as_str)
            .unwrap_or("customers"),
        r.pages,
        opts.clients,
        opts.seconds
    );
    println!("RESULT fake_pages_per_s {:.0}", r.pages_per_s);
    println!("RESULT fake_seed_10k_s {:.3}", r.seed_seconds);
    Ok(())
}
