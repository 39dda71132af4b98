use clap::Parser as _;
use platform::service::{bootstrap, execute, no_consumers, Cli};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let (settings, _telemetry) = bootstrap::<ingress::Settings>("ingress")?;
    execute(cli.command(), &ingress::spec(), &settings.common, settings.ingress.listen, no_consumers()).await
}
