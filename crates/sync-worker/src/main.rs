use std::sync::Arc;

use clap::Parser as _;
use platform::service::{bootstrap, execute, Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let (settings, _telemetry) = bootstrap::<sync_worker::Settings>("sync-worker")?;
    let command = cli.command();
    // Connection secrets are opened with the master keys query-api sealed them with;
    // `migrate` needs none.
    let consumers = match command {
        Command::Migrate => platform::service::no_consumers(),
        Command::Serve => {
            let sealer = platform::crypto::Sealer::from_env()
                .map_err(|e| anyhow::anyhow!("BILLING_MASTER_KEYS: {e}"))?;
            sync_worker::consumers(&settings, Arc::new(sealer))
        }
    };
    execute(
        command,
        &sync_worker::spec(),
        &settings.common,
        settings.sync_worker.listen,
        consumers,
    )
    .await
}
