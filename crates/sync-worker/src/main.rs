use clap::Parser as _;
use platform::service::{bootstrap, execute, no_consumers, Cli};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let (settings, _telemetry) = bootstrap::<sync_worker::Settings>("sync-worker")?;
    execute(
        cli.command(),
        &sync_worker::spec(),
        &settings.common,
        settings.sync_worker.listen,
        no_consumers(),
    )
    .await
}
