use clap::Parser as _;
use platform::service::{bootstrap, execute, no_consumers, Cli};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let (settings, _telemetry) = bootstrap::<query_api::Settings>("query-api")?;
    execute(
        cli.command(),
        &query_api::spec(),
        &settings.common,
        settings.query_api.listen,
        no_consumers(),
    )
    .await
}
