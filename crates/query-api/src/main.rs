use clap::Parser as _;
use platform::service::{bootstrap, Cli, Command};
use query_api::{app::Application, auth::TokenKeys, crypto::Sealer};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let (settings, _telemetry) = bootstrap::<query_api::Settings>("query-api")?;
    match cli.command() {
        Command::Migrate => platform::service::migrate(&query_api::spec(), &settings.common).await,
        Command::Serve => {
            let jwt = std::env::var("BILLING_JWT_SECRET").unwrap_or_default();
            let keys = TokenKeys::new(jwt.as_bytes())?;
            let sealer = Sealer::from_env()
                .map_err(|e| anyhow::anyhow!("invalid configuration `BILLING_MASTER_KEYS`: {e}"))?;
            let app = Application::build(settings.common, settings.query_api, keys, sealer)?;
            app.run_until_stopped(platform::shutdown::on_signal()).await
        }
    }
}
