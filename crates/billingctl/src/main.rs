//! `billingctl`: operator commands (`migrate`, `token`, `rotate-key`, `import-accounts`, `sync`,
//! `match`, `dlq`).

mod matching;
mod sync;

use clap::{Parser, Subcommand};
use platform::{amqp::Broker, amqp::Topology, config::CommonSettings, service::ServiceSpec};

#[derive(Parser)]
#[command(version, about = "Operate the Stripe billing integration")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply every service's migrations to its own schema.
    Migrate,
    /// Mint an API bearer token for local use (signed with BILLING_JWT_SECRET).
    Token {
        #[arg(long, default_value = "demo")]
        tenant: String,
        #[arg(long, default_value = "demo-user")]
        user: String,
        /// `csm` or `admin`.
        #[arg(long, default_value = "csm")]
        role: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: i64,
    },
    /// Re-seal every stored Stripe secret with the first key of BILLING_MASTER_KEYS; run after
    /// putting a new key first, then remove the old key once this reports 0 left.
    RotateKey,
    /// Import CSCX accounts from a CSV (header: account_id,name,domains,external_ids,csm_user_id)
    /// or JSON-lines file and publish them to the matcher; bad rows are reported by line.
    ImportAccounts {
        file: String,
        /// Tenant (CSCX organisation) the accounts belong to.
        #[arg(long)]
        tenant: String,
        /// Validate and report only; publish nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Backfill a Stripe connection: `--connection <id>` queues the job (`--follow` then shows
    /// its progress), `--progress` shows the latest backfill, `--status` lists recent runs.
    Sync(sync::SyncArgs),
    /// Matching review: list customers waiting for a person, show one, decide
    /// (`set`, `confirm`, `reject`, `clear`).
    Match(matching::MatchArgs),
    /// Dead-letter queues.
    Dlq {
        #[command(subcommand)]
        action: DlqAction,
    },
}

#[derive(Subcommand)]
enum DlqAction {
    /// Show dead letters of a work queue (e.g. `sync-worker.stripe-events`) with their reasons.
    List {
        queue: String,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Republish dead letters to their original exchange, each confirmed before removal.
    Replay {
        queue: String,
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
}

fn services() -> Vec<ServiceSpec> {
    vec![
        ingress::spec(),
        sync_worker::spec(),
        matcher::spec(),
        risk_engine::spec(),
        query_api::spec(),
    ]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Command::Token {
        tenant,
        user,
        role,
        ttl,
    } = &cli.command
    {
        let secret = std::env::var("BILLING_JWT_SECRET").unwrap_or_default();
        let keys = query_api::auth::TokenKeys::new(secret.as_bytes())?;
        let role = match role.as_str() {
            "admin" => query_api::auth::Role::Admin,
            "csm" => query_api::auth::Role::Csm,
            other => anyhow::bail!("unknown role `{other}` (csm or admin)"),
        };
        println!("{}", keys.mint(tenant, user, &[role], *ttl)?);
        return Ok(());
    }
    let common: CommonSettings = platform::config::section(&platform::config::load()?, "")?;
    platform::config::validate_common(&common)?;
    match cli.command {
        Command::Migrate => {
            for spec in services() {
                platform::service::migrate(&spec, &common).await?;
                println!("{:<12} schema {:<12} up to date", spec.name, spec.schema);
            }
        }
        Command::Token { .. } => unreachable!("handled before loading config"),
        Command::ImportAccounts {
            file,
            tenant,
            dry_run,
        } => import_accounts(&common, &file, &tenant, dry_run).await?,
        Command::Sync(args) => sync::run(&common, args).await?,
        Command::Match(args) => matching::run(&common, args).await?,
        Command::RotateKey => {
            let sealer = query_api::crypto::Sealer::from_env()
                .map_err(|e| anyhow::anyhow!("invalid configuration `BILLING_MASTER_KEYS`: {e}"))?;
            let pool = platform::db::pool(&common.database)?;
            let n = query_api::connections::reseal_all(&pool, &sealer).await?;
            let hooks = query_api::alert_webhook::reseal_all(&pool, &sealer).await?;
            println!(
                "re-sealed {n} Stripe secret(s) and {hooks} alert webhook secret(s) with key `{}`",
                sealer.current_key_id()
            );
        }
        Command::Dlq { action } => {
            let broker = Broker::new(common.amqp.clone(), Topology::new());
            match action {
                DlqAction::List { queue, limit } => {
                    let letters = platform::amqp::dlq::peek(&broker, &queue, limit).await?;
                    println!("{} dead letter(s) shown from {queue}.dlq", letters.len());
                    for d in letters {
                        println!(
                            "{}  {}  tenant={}  from {}/{}\n    reason: {}",
                            d.message_id,
                            d.message_type,
                            d.tenant_id.unwrap_or_default(),
                            d.original_exchange,
                            d.original_routing_key,
                            d.reason
                        );
                    }
                }
                DlqAction::Replay { queue, limit } => {
                    let n = platform::amqp::dlq::replay(&broker, &queue, limit).await?;
                    println!("replayed {n} message(s) from {queue}.dlq");
                }
            }
            broker.close().await;
        }
    }
    Ok(())
}

async fn import_accounts(
    common: &CommonSettings,
    file: &str,
    tenant: &str,
    dry_run: bool,
) -> anyhow::Result<()> {
    use contracts::{v1::CscxAccountUpserted, Contract as _};
    use prost::Message as _;

    domain::TenantId::parse(tenant).map_err(|e| anyhow::anyhow!("--tenant: {e}"))?;
    let format = matcher::import::Format::from_path(file)
        .ok_or_else(|| anyhow::anyhow!("{file}: expected a .csv, .jsonl, .ndjson or .json file"))?;
    let text = std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("{file}: {e}"))?;
    let (mut accepted, rejected) = matcher::import::parse(&text, format, tenant);
    // The import's time orders it against the platform's own updates (newest wins); the
    // message id stays content-derived, so importing the same file twice is still one change.
    let now_ms = chrono::Utc::now().timestamp_millis();
    for a in &mut accepted {
        a.account.updated_at_ms = now_ms;
    }
    for r in &rejected {
        println!("{file}:{}: rejected: {}", r.line, r.reason);
    }
    if !dry_run && !accepted.is_empty() {
        // Declaring the matcher's topology makes the messages wait durably even if the
        // matcher is not running yet.
        let broker = Broker::new(common.amqp.clone(), matcher::spec().topology);
        let publisher = platform::amqp::Publisher::new(broker.clone());
        let messages: Vec<_> = accepted
            .iter()
            .map(|a| {
                platform::amqp::Outgoing::protobuf(
                    CscxAccountUpserted::EXCHANGE,
                    a.account.routing_key(),
                    a.message_id.clone(),
                    CscxAccountUpserted::TYPE,
                    tenant,
                    a.account.encode_to_vec(),
                )
            })
            .collect();
        for chunk in messages.chunks(500) {
            publisher.publish_all(chunk).await?;
        }
        broker.close().await;
    }
    println!(
        "{} account(s) {}, {} row(s) rejected",
        accepted.len(),
        if dry_run {
            "valid (dry run, nothing published)"
        } else {
            "published"
        },
        rejected.len()
    );
    Ok(())
}
