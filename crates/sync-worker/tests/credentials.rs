//! Credentials as the sync worker reads them: connections made through query-api's real API
//! (restricted key and Connect OAuth, against the Stripe fake) open with the same master key,
//! authenticate at the fake as `Credentials::api_config` describes, and report revocation;
//! unknown ids and tampered ciphertexts fail with their own errors.

use base64::Engine as _;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use platform::{amqp::Broker, crypto::Sealer, testing::TestEnv, CancellationToken};
use query_api::{
    app::Application,
    auth::{Role, TokenKeys},
    settings::QueryApiSettings,
};
use secrecy::ExposeSecret as _;
use stripe_api::{stripe_core::customer::ListCustomer, ApiError, StripeApi};
use sync_worker::credentials::{self, ConnectionKind, CredentialsError};
use uuid::Uuid;

const JWT: &[u8] = b"credentials-test-secret-credentials-test";

fn sealer() -> Sealer {
    let key = base64::engine::general_purpose::STANDARD.encode([3u8; 32]);
    Sealer::new(&[("k1".into(), key)]).unwrap()
}

/// query-api (which migrates `integration`) in front of the Stripe fake.
struct Stack {
    env: TestEnv,
    fake: stripe_fake::FakeServer,
    base: String,
    keys: TokenKeys,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    http: reqwest::Client,
}

impl Stack {
    async fn start() -> Self {
        let env = TestEnv::new();
        let fake = stripe_fake::FakeServer::start(stripe_fake::FakeConfig {
            rate_limit: 0,
            ..Default::default()
        })
        .await
        .unwrap();
        let settings = QueryApiSettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            stripe_api_base: fake.base_url(),
            stripe_connect_base: fake.base_url(),
            stripe_livemode: false,
            allow_secret_keys: false,
            allow_http_alert_webhooks: false,
            connect_client_id: "ca_fake".into(),
            oauth_redirect_url: "http://127.0.0.1:1/api/integrations/stripe/callback".into(),
            oauth_state_ttl_secs: 600,
            platform_secret_key: Some("sk_test_fake".into()),
            cscx_origins: String::new(),
            rate_limit_per_second: 1000,
            rate_limit_burst: 1000,
        };
        let app = Application::build(
            env.common.clone(),
            settings,
            TokenKeys::new(JWT).unwrap(),
            sealer(),
        )
        .unwrap();
        let base = format!("http://127.0.0.1:{}", app.port());
        let readiness = app.readiness();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(app.run_until_stopped(cancel.clone()));
        platform::testing::wait_for_database(&readiness).await;
        Self {
            env,
            fake,
            base,
            keys: TokenKeys::new(JWT).unwrap(),
            cancel,
            task,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    fn admin(&self, tenant: &str) -> String {
        self.keys
            .mint(tenant, &format!("{tenant}-admin"), &[Role::Admin], 600)
            .unwrap()
    }

    async fn connect(&self, tenant: &str, body: serde_json::Value) -> reqwest::Response {
        self.http
            .post(format!("{}/api/integrations/stripe/connect", self.base))
            .bearer_auth(self.admin(tenant))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn connect_restricted_key(&self, tenant: &str) -> Uuid {
        let resp = self
            .connect(
                tenant,
                serde_json::json!({"restricted_key": "rk_test_fake"}),
            )
            .await;
        assert_eq!(resp.status().as_u16(), 201);
        connection_id(resp).await
    }

    /// The whole Connect OAuth round trip: authorize at the fake, follow its redirect back.
    async fn connect_oauth(&self, tenant: &str) -> Uuid {
        let start: serde_json::Value = self
            .connect(tenant, serde_json::json!({"oauth": true}))
            .await
            .json()
            .await
            .unwrap();
        let authorize = start["authorize_url"].as_str().unwrap();
        let redirect = self.http.get(authorize).send().await.unwrap();
        assert_eq!(redirect.status().as_u16(), 302);
        let location = redirect.headers()["location"].to_str().unwrap();
        let (_, query) = location.split_once('?').unwrap();
        let resp = self
            .http
            .get(format!(
                "{}/api/integrations/stripe/callback?{query}",
                self.base
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201);
        connection_id(resp).await
    }

    async fn disconnect(&self, tenant: &str, id: Uuid) {
        let resp = self
            .http
            .delete(format!(
                "{}/api/integrations/stripe/connections/{id}",
                self.base
            ))
            .bearer_auth(self.admin(tenant))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
    }

    async fn db(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(&self.env.common.database.url)
            .await
            .unwrap()
    }

    async fn stop(self) {
        self.cancel.cancel();
        self.task.await.unwrap().unwrap();
        self.fake.stop().await;
        let broker = Broker::new(self.env.common.amqp.clone(), query_api::spec().topology);
        self.env.cleanup(&[&broker]).await;
    }
}

async fn connection_id(resp: reqwest::Response) -> Uuid {
    let body: serde_json::Value = resp.json().await.unwrap();
    Uuid::parse_str(body["id"].as_str().unwrap()).unwrap()
}

/// One authenticated read at the fake, the way a sync would make it.
async fn list_customers(creds: &credentials::Credentials, base_url: &str) -> Result<(), ApiError> {
    let mut config = creds.api_config(base_url);
    config.max_attempts = 1;
    let api = StripeApi::new(config)?;
    api.page("customers.list", &ListCustomer::new().limit(1))
        .await
        .map(|_| ())
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_open_authenticate_and_report_revocation() {
    let stack = Stack::start().await;
    let sealer = sealer();
    let mut conn = stack.db().await;

    let key_id = stack.connect_restricted_key("tenant-a").await;
    let key = credentials::load(&mut conn, &sealer, key_id).await.unwrap();
    assert_eq!(key.connection_id, key_id);
    assert_eq!(key.tenant_id, "tenant-a");
    assert_eq!(key.kind, ConnectionKind::RestrictedKey);
    assert!(key.account_id.starts_with("acct_"));
    assert!(!key.livemode && !key.revoked);
    assert_eq!(key.secret.expose_secret(), "rk_test_fake");
    assert!(!format!("{key:?}").contains("rk_test_fake"));
    list_customers(&key, &stack.fake.base_url()).await.unwrap();

    let oauth_id = stack.connect_oauth("tenant-b").await;
    let oauth = credentials::load(&mut conn, &sealer, oauth_id)
        .await
        .unwrap()
        .require_active()
        .unwrap();
    assert_eq!(oauth.kind, ConnectionKind::OAuth);
    assert_eq!(oauth.tenant_id, "tenant-b");
    assert_ne!(oauth.account_id, key.account_id, "a connected account");
    assert_eq!(oauth.stripe_account_header(), None);
    list_customers(&oauth, &stack.fake.base_url())
        .await
        .unwrap();

    let listed: Vec<Uuid> = credentials::active(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.connection_id)
        .collect();
    assert_eq!(listed, vec![key_id, oauth_id]);

    // Disconnecting deauthorizes at the fake: the worker sees the revocation, and the token
    // it may still hold is refused.
    stack.disconnect("tenant-b", oauth_id).await;
    let revoked = credentials::load(&mut conn, &sealer, oauth_id)
        .await
        .unwrap();
    assert!(revoked.revoked);
    assert_eq!(revoked.secret.expose_secret(), oauth.secret.expose_secret());
    assert!(matches!(
        list_customers(&revoked, &stack.fake.base_url()).await,
        Err(ApiError::Unauthorized { .. })
    ));
    assert!(matches!(
        revoked.require_active(),
        Err(CredentialsError::Revoked { connection_id }) if connection_id == oauth_id
    ));
    let listed = credentials::active(&mut conn).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].connection_id, listed[0].tenant_id.as_str()),
        (key_id, "tenant-a")
    );

    let unknown = Uuid::new_v4();
    assert!(matches!(
        credentials::load(&mut conn, &sealer, unknown).await,
        Err(CredentialsError::NotFound { connection_id }) if connection_id == unknown
    ));

    // A master key this worker was not given cannot open anything.
    let stranger = Sealer::new(&[(
        "k9".into(),
        base64::engine::general_purpose::STANDARD.encode([9u8; 32]),
    )])
    .unwrap();
    assert!(matches!(
        credentials::load(&mut conn, &stranger, key_id).await,
        Err(CredentialsError::Unseal { .. })
    ));

    // One flipped bit in the stored ciphertext.
    diesel::sql_query(
        "UPDATE integration.connections \
         SET secret_sealed = set_byte(secret_sealed, 20, get_byte(secret_sealed, 20) # 1) \
         WHERE id = $1",
    )
    .bind::<diesel::sql_types::Uuid, _>(key_id)
    .execute(&mut conn)
    .await
    .unwrap();
    assert!(matches!(
        credentials::load(&mut conn, &sealer, key_id).await,
        Err(CredentialsError::Unseal { connection_id, .. }) if connection_id == key_id
    ));

    drop(conn);
    stack.stop().await;
}
