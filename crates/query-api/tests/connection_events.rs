//! What query-api says and hears on the bus about connections: a stored connection queues
//! exactly one backfill on `sync.jobs` (and is stored even when the broker is down); Stripe's
//! `account.application.deauthorized` revokes the OAuth connection once, however often it is
//! delivered, and leaves restricted keys alone.

use std::time::Duration;

use base64::Engine as _;
use contracts::{
    exchanges,
    v1::{sync_job::Kind, StripeEventReceived, SyncJob},
    Contract as _,
};
use diesel::{sql_types::BigInt, QueryableByName};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use lapin::options::BasicGetOptions;
use platform::{
    amqp::{headers, Broker, Outgoing, Publisher, QueueSpec},
    crypto::Sealer,
    testing::TestEnv,
    CancellationToken,
};
use prost::Message as _;
use query_api::{
    app::Application,
    auth::{Role, TokenKeys},
    deauthorization::EVENT_TYPE,
    settings::QueryApiSettings,
};

const JWT: &[u8] = b"connection-events-secret-connection-events";
const OBSERVER: &str = "observer";

struct TestApp {
    env: TestEnv,
    base: String,
    keys: TokenKeys,
    fake: stripe_fake::FakeServer,
    /// query-api's topology plus a queue that sees every sync job.
    observer: std::sync::Arc<Broker>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    http: reqwest::Client,
}

impl TestApp {
    async fn start(env: TestEnv) -> Self {
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
        let master = base64::engine::general_purpose::STANDARD.encode([5u8; 32]);
        let app = Application::build(
            env.common.clone(),
            settings,
            TokenKeys::new(JWT).unwrap(),
            Sealer::new(&[("k1".into(), master)]).unwrap(),
        )
        .unwrap();
        let base = format!("http://127.0.0.1:{}", app.port());
        let readiness = app.readiness();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(app.run_until_stopped(cancel.clone()));
        platform::testing::wait_for_database(&readiness).await;
        let topology = query_api::spec()
            .topology
            .queue(QueueSpec::new(OBSERVER).bind(exchanges::SYNC_JOBS, "#"));
        // The real broker even when the app under test is given an unreachable one.
        let mut amqp = env.common.amqp.clone();
        amqp.url = platform::testing::test_amqp_url();
        let observer = Broker::new(amqp, topology);
        observer.connection().await.unwrap();
        Self {
            env,
            base,
            keys: TokenKeys::new(JWT).unwrap(),
            fake,
            observer,
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

    async fn connect(&self, tenant: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let resp = self
            .http
            .post(format!("{}/api/integrations/stripe/connect", self.base))
            .bearer_auth(self.admin(tenant))
            .json(&body)
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap())
    }

    /// Connect OAuth through the fake; `account` picks a connected account to (re)connect.
    async fn connect_oauth(&self, tenant: &str, account: Option<&str>) -> serde_json::Value {
        let (status, start) = self
            .connect(tenant, serde_json::json!({"oauth": true}))
            .await;
        assert_eq!(status, 200, "{start}");
        let mut authorize = start["authorize_url"].as_str().unwrap().to_string();
        if let Some(account) = account {
            authorize.push_str(&format!("&stripe_user_id={account}"));
        }
        let redirect = self.http.get(&authorize).send().await.unwrap();
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
        resp.json().await.unwrap()
    }

    async fn count(&self, sql: &str) -> i64 {
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let mut conn = AsyncPgConnection::establish(&self.env.common.database.url)
            .await
            .unwrap();
        diesel::sql_query(sql).load::<N>(&mut conn).await.unwrap()[0].n
    }

    /// Polls until `sql` counts `n` (10 s at most).
    async fn eventually(&self, sql: &str, n: i64) {
        for _ in 0..200 {
            if self.count(sql).await == n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("never {n}: {sql}");
    }

    /// Every sync job waiting on the observer queue.
    async fn sync_jobs(&self) -> Vec<(lapin::BasicProperties, SyncJob)> {
        let conn = self.observer.connection().await.unwrap();
        let channel = conn.create_channel().await.unwrap();
        let mut jobs = Vec::new();
        while let Some(got) = channel
            .basic_get(
                self.observer.name(OBSERVER).into(),
                BasicGetOptions { no_ack: true },
            )
            .await
            .unwrap()
        {
            let job = SyncJob::decode(&*got.delivery.data).unwrap();
            jobs.push((got.delivery.properties, job));
        }
        jobs
    }

    /// Publishes a deauthorization as ingress would (message id = event id).
    async fn deauthorized(&self, event_id: &str, account: &str, tenant: &str) {
        let payload = serde_json::json!({
            "id": event_id,
            "object": "event",
            "type": EVENT_TYPE,
            "account": account,
            "data": {"object": {"id": "ca_fake", "object": "application"}},
        });
        let event = StripeEventReceived {
            event_id: event_id.into(),
            event_type: EVENT_TYPE.into(),
            account: account.into(),
            created: chrono::Utc::now().timestamp(),
            payload: payload.to_string().into_bytes(),
            endpoint: "connect".into(),
            ..Default::default()
        };
        let message = Outgoing::protobuf(
            StripeEventReceived::EXCHANGE,
            event.routing_key(),
            event_id,
            StripeEventReceived::TYPE,
            tenant,
            event.encode_to_vec(),
        );
        Publisher::new(self.observer.clone())
            .publish(&message)
            .await
            .unwrap();
    }

    async fn stop(self) {
        self.cancel.cancel();
        self.task.await.unwrap().unwrap();
        self.fake.stop().await;
        self.env.cleanup(&[&self.observer]).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stored_connection_queues_exactly_one_backfill() {
    let app = TestApp::start(TestEnv::new()).await;
    let before = chrono::Utc::now().timestamp_millis();
    let (status, body) = app
        .connect(
            "tenant-a",
            serde_json::json!({"restricted_key": "rk_test_fake"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    let jobs = app.sync_jobs().await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let (props, job) = &jobs[0];
    assert_eq!(job.connection_id, body["id"].as_str().unwrap());
    assert_eq!(job.kind, Kind::Backfill as i32);
    assert!(uuid::Uuid::parse_str(&job.job_id).is_ok());
    assert!(job.requested_at_ms >= before);
    assert_eq!(
        props.message_id().as_ref().map(|id| id.as_str()),
        Some(job.job_id.as_str())
    );
    assert_eq!(
        props.kind().as_ref().map(|t| t.as_str()),
        Some(SyncJob::TYPE)
    );
    let tenant = props.headers().as_ref().and_then(|h| {
        h.inner()
            .iter()
            .find(|(k, _)| k.as_str() == headers::TENANT_ID)
            .and_then(|(_, v)| match v {
                lapin::types::AMQPValue::LongString(s) => Some(s.as_bytes().to_vec()),
                _ => None,
            })
    });
    assert_eq!(tenant.as_deref(), Some(&b"tenant-a"[..]));

    // A refused connect queues nothing.
    let (status, _) = app
        .connect(
            "tenant-a",
            serde_json::json!({"restricted_key": "rk_test_fake"}),
        )
        .await;
    assert_eq!(status, 409);
    assert!(app.sync_jobs().await.is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_connection_is_stored_when_the_broker_is_down() {
    let mut env = TestEnv::new();
    env.common.amqp.url = "amqp://guest:guest@127.0.0.1:1/%2f".into();
    let app = TestApp::start(env).await;
    let (status, body) = app
        .connect(
            "tenant-a",
            serde_json::json!({"restricted_key": "rk_test_fake"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        app.count("SELECT count(*) AS n FROM integration.connections WHERE status = 'active'")
            .await,
        1
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stripe_deauthorization_revokes_the_oauth_connection_once() {
    let mut env = TestEnv::new();
    // One message at a time, in order: when a later message is applied, earlier ones were.
    env.common.amqp.prefetch = 1;
    let app = TestApp::start(env).await;
    let (status, key) = app
        .connect(
            "tenant-a",
            serde_json::json!({"restricted_key": "rk_test_fake"}),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    let oauth = app.connect_oauth("tenant-a", None).await;
    let account = oauth["account_id"].as_str().unwrap().to_string();
    let oauth_id = oauth["id"].as_str().unwrap().to_string();

    app.deauthorized("evt_deauth_1", &account, "tenant-a").await;
    app.eventually(
        &format!("SELECT count(*) AS n FROM integration.connections WHERE id = '{oauth_id}' AND status = 'revoked' AND revoked_at IS NOT NULL"),
        1,
    )
    .await;
    let audit = "SELECT count(*) AS n FROM integration.audit_log WHERE actor = 'stripe' AND action = 'stripe.deauthorized'";
    assert_eq!(app.count(audit).await, 1);
    assert_eq!(
        app.count(&format!("SELECT count(*) AS n FROM integration.audit_log WHERE actor = 'stripe' AND tenant_id = 'tenant-a' AND target = '{oauth_id}'")).await,
        1
    );

    // The admin connects the account again; then the old event is delivered once more. It
    // must not revoke the new grant.
    let again = app.connect_oauth("tenant-a", Some(&account)).await;
    assert_eq!(again["account_id"].as_str(), Some(account.as_str()));
    app.deauthorized("evt_deauth_1", &account, "tenant-a").await;
    // A deauthorization naming the restricted key's account: keys are not Connect grants.
    let key_account = key["account_id"].as_str().unwrap();
    app.deauthorized("evt_deauth_2", key_account, "tenant-a")
        .await;
    app.eventually(
        "SELECT count(*) AS n FROM integration.inbox WHERE message_id = 'evt_deauth_2'",
        1,
    )
    .await;

    assert_eq!(
        app.count("SELECT count(*) AS n FROM integration.connections WHERE status = 'active'")
            .await,
        2,
        "the new grant and the restricted key stay active"
    );
    assert_eq!(app.count(audit).await, 1, "no second audit record");
    assert_eq!(
        app.count("SELECT count(*) AS n FROM integration.inbox")
            .await,
        2
    );
    assert_eq!(
        app.observer
            .queue_depth(&format!("{}.dlq", contracts::queues::QUERY_API_CONNECTIONS))
            .await
            .unwrap(),
        0
    );
    app.stop().await;
}
