use clap::Parser as _;
use platform::service::{bootstrap, Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let (settings, _telemetry) = bootstrap::<ingress::Settings>("ingress")?;
    match cli.command() {
        Command::Migrate => platform::service::migrate(&ingress::spec(), &settings.common).await,
        Command::Serve => {
            let app = ingress::app::Application::build(settings.common, settings.ingress)?;
            app.run_until_stopped(platform::shutdown::on_signal()).await
        }
    }
}
