//! query-api in-process for other crates' integration tests (feature `testing`): the real
//! application on port 0 against a test's database and broker, with one call helper.

use base64::Engine as _;
use platform::config::CommonSettings;
use platform::CancellationToken;

use crate::app::Application;
use crate::auth::TokenKeys;
use crate::settings::QueryApiSettings;

/// Settings for a test: port 0, Stripe unreachable (tests that need Stripe bring the fake).
pub fn settings(allow_http_alert_webhooks: bool) -> QueryApiSettings {
    QueryApiSettings {
        listen: "127.0.0.1:0".parse().expect("address"),
        stripe_api_base: "http://127.0.0.1:1/".into(),
        stripe_connect_base: "http://127.0.0.1:1/".into(),
        stripe_livemode: false,
        allow_secret_keys: false,
        allow_http_alert_webhooks,
        connect_client_id: String::new(),
        oauth_redirect_url: "http://127.0.0.1:1/api/integrations/stripe/callback".into(),
        oauth_state_ttl_secs: 600,
        cscx_origins: "https://cscx.test".into(),
        rate_limit_per_second: 1000,
        rate_limit_burst: 1000,
        platform_secret_key: None,
    }
}

/// A running query-api.
pub struct InProcess {
    pub base: String,
    amqp: platform::config::AmqpSettings,
    pub keys: TokenKeys,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    client: reqwest::Client,
}

impl InProcess {
    /// Starts it with `jwt` (≥ 32 bytes) and the 32-byte master key `master` (id `k1`), and
    /// waits until it reached its database.
    pub async fn start(
        common: CommonSettings,
        settings: QueryApiSettings,
        jwt: &[u8],
        master: [u8; 32],
    ) -> Self {
        let amqp = common.amqp.clone();
        let master = base64::engine::general_purpose::STANDARD.encode(master);
        let app = Application::build(
            common,
            settings,
            TokenKeys::new(jwt).expect("jwt key"),
            crate::crypto::Sealer::new(&[("k1".into(), master)]).expect("master key"),
        )
        .expect("query-api builds");
        let base = format!("http://127.0.0.1:{}", app.port());
        let readiness = app.readiness();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(app.run_until_stopped(cancel.clone()));
        platform::testing::wait_for_database(&readiness).await;
        Self {
            base,
            amqp,
            keys: TokenKeys::new(jwt).expect("jwt key"),
            cancel,
            task,
            client: reqwest::Client::new(),
        }
    }

    /// `method path` with an optional bearer token and JSON body: (status, JSON or null).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("query-api answers");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Stops it the way SIGTERM would, waits for it, and removes the queues it declared in
    /// the test's namespace (left behind, they slow the broker for every later run).
    pub async fn stop(self) {
        self.cancel.cancel();
        self.task
            .await
            .expect("query-api task")
            .expect("query-api stopped cleanly");
        let broker = platform::amqp::Broker::new(self.amqp, crate::spec().topology);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), broker.delete_topology())
            .await;
        broker.close().await;
    }
}

/// The key the Stripe fake accepts as a restricted key.
pub const FAKE_RESTRICTED_KEY: &str = "rk_test_fake";

/// A restricted-key connection to `account`, sealed and stored as `POST
/// /api/integrations/stripe/connect` stores it but without the key check against Stripe
/// (nor the audit entry or the backfill request): for the sync worker's tests and the
/// whole-system runs, which bring their own fake. Returns the connection's id.
pub async fn store_restricted_key_connection(
    conn: &mut diesel_async::AsyncPgConnection,
    sealer: &platform::crypto::Sealer,
    tenant: &str,
    account: &str,
) -> anyhow::Result<uuid::Uuid> {
    use diesel_async::RunQueryDsl as _;
    let id = uuid::Uuid::new_v4();
    let sealed = sealer.seal(
        FAKE_RESTRICTED_KEY.as_bytes(),
        &crate::connections::sealing_context(tenant, id),
    )?;
    diesel::insert_into(crate::schema::connections::table)
        .values(crate::connections::NewConnection {
            id,
            tenant_id: tenant.to_owned(),
            kind: "restricted_key".into(),
            account_id: account.to_owned(),
            livemode: false,
            secret_hint: "rk_test_…ake".into(),
            secret_sealed: sealed.bytes,
            secret_key_id: sealed.key_id,
            created_by: "test".into(),
        })
        .execute(conn)
        .await?;
    Ok(id)
}
