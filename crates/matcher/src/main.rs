use clap::Parser as _;
use platform::service::{bootstrap, execute, Cli};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let (settings, _telemetry) = bootstrap::<matcher::Settings>("matcher")?;
    execute(
        cli.command(),
        &matcher::spec(),
        &settings.common,
        settings.matcher.listen,
        matcher::consumers(&settings),
    )
    .await
}
