use clap::Parser as _;
use platform::service::{bootstrap, execute, Cli};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let (settings, _telemetry) = bootstrap::<risk_engine::Settings>("risk-engine")?;
    execute(
        cli.command(),
        &risk_engine::spec(),
        &settings.common,
        settings.risk_engine.listen,
        risk_engine::consumers(&settings),
    )
    .await
}
