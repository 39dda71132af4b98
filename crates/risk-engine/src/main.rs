use std::sync::Arc;

use clap::Parser as _;
use platform::service::{bootstrap, execute, Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let (settings, _telemetry) = bootstrap::<risk_engine::Settings>("risk-engine")?;
    let command = cli.command();
    // Tenants' alert-webhook secrets are opened with the master keys query-api sealed them
    // with; without them alerts still go out on the bus.
    let sealer = match (command, std::env::var("BILLING_MASTER_KEYS")) {
        (Command::Serve, Ok(keys)) if !keys.trim().is_empty() => Some(Arc::new(
            platform::crypto::Sealer::from_env()
                .map_err(|e| anyhow::anyhow!("BILLING_MASTER_KEYS: {e}"))?,
        )),
        _ => None,
    };
    execute(
        command,
        &risk_engine::spec(),
        &settings.common,
        settings.risk_engine.listen,
        risk_engine::consumers(&settings, sealer),
    )
    .await
}
