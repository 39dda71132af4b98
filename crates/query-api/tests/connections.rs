//! Connecting Stripe with a restricted key, against the Stripe fake and the real Postgres:
//! validated by a read call, sealed at rest, scoped to the tenant, audit-logged; every bad
//! input refused with a clear message and nothing stored.

use base64::Engine as _;
use diesel::{
    sql_types::{BigInt, Bytea, Text},
    QueryableByName,
};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use platform::{testing::TestEnv, CancellationToken};
use query_api::{
    app::Application,
    auth::{Role, TokenKeys},
    crypto::{Sealed, Sealer},
    settings::QueryApiSettings,
};

const JWT: &[u8] = b"connections-test-secret-connections-test";

fn master() -> Vec<(String, String)> {
    vec![(
        "k1".into(),
        base64::engine::general_purpose::STANDARD.encode([7u8; 32]),
    )]
}

struct TestApp {
    env: TestEnv,
    base: String,
    keys: TokenKeys,
    fake: stripe_fake::FakeServer,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    client: reqwest::Client,
}

impl TestApp {
    async fn start(allow_secret_keys: bool) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
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
            allow_secret_keys,
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
            Sealer::new(&master()).unwrap(),
        )
        .unwrap();
        let base = format!("http://127.0.0.1:{}", app.port());
        let readiness = app.readiness();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(app.run_until_stopped(cancel.clone()));
        platform::testing::wait_for_database(&readiness).await;
        Self {
            env,
            base,
            keys: TokenKeys::new(JWT).unwrap(),
            fake,
            cancel,
            task,
            client: reqwest::Client::new(),
        }
    }

    fn token(&self, tenant: &str, role: Role) -> String {
        self.keys
            .mint(tenant, &format!("{tenant}-user"), &[role], 600)
            .unwrap()
    }

    async fn call(
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
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
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

    async fn stop(self) {
        self.cancel.cancel();
        self.task.await.unwrap().unwrap();
        self.fake.stop().await;
        self.env.cleanup(&[]).await;
    }
}

const CONNECT: &str = "/api/integrations/stripe/connect";
const LIST: &str = "/api/integrations/stripe/connections";

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_connects_a_restricted_key_which_is_sealed_and_tenant_scoped() {
    let app = TestApp::start(false).await;
    let admin_a = app.token("tenant-a", Role::Admin);
    let (status, body) = app
        .call(
            reqwest::Method::POST,
            CONNECT,
            Some(&admin_a),
            Some(serde_json::json!({"restricted_key": "rk_test_fake"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    assert!(body["account_id"].as_str().unwrap().starts_with("acct_"));
    assert_eq!(body["kind"], "restricted_key");
    assert_eq!(body["secret_hint"], "rk_test_…fake");
    assert!(
        !body.to_string().contains("rk_test_fake"),
        "the key is never returned"
    );

    // Sealed at rest: the stored bytes are not the key, and open only for this tenant and row.
    #[derive(QueryableByName)]
    struct Secret {
        #[diesel(sql_type = Bytea)]
        secret_sealed: Vec<u8>,
        #[diesel(sql_type = Text)]
        secret_key_id: String,
    }
    let mut conn = AsyncPgConnection::establish(&app.env.common.database.url)
        .await
        .unwrap();
    let row: Secret =
        diesel::sql_query("SELECT secret_sealed, secret_key_id FROM integration.connections")
            .get_result(&mut conn)
            .await
            .unwrap();
    assert!(!row.secret_sealed.windows(8).any(|w| w == b"rk_test_"));
    let sealer = Sealer::new(&master()).unwrap();
    let sealed = Sealed {
        key_id: row.secret_key_id,
        bytes: row.secret_sealed,
    };
    let ctx =
        query_api::connections::sealing_context("tenant-a", uuid::Uuid::parse_str(&id).unwrap());
    assert_eq!(sealer.open(&sealed, &ctx).unwrap(), b"rk_test_fake");
    assert!(sealer
        .open(&sealed, &ctx.replace("tenant-a", "tenant-b"))
        .is_err());

    assert_eq!(
        app.count(
            "SELECT count(*) AS n FROM integration.account_tenants WHERE tenant_id = 'tenant-a'"
        )
        .await,
        1
    );

    // The same account again is a conflict, not a second row.
    let (status, _) = app
        .call(
            reqwest::Method::POST,
            CONNECT,
            Some(&admin_a),
            Some(serde_json::json!({"restricted_key": "rk_test_fake"})),
        )
        .await;
    assert_eq!(status, 409);

    // Tenant A sees it (CSMs may read); tenant B sees nothing and cannot revoke it.
    let (status, list) = app
        .call(
            reqwest::Method::GET,
            LIST,
            Some(&app.token("tenant-a", Role::Csm)),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    let (_, list_b) = app
        .call(
            reqwest::Method::GET,
            LIST,
            Some(&app.token("tenant-b", Role::Admin)),
            None,
        )
        .await;
    assert_eq!(list_b["data"].as_array().unwrap().len(), 0);
    // A token of the tenant with neither role is refused, not shown the list.
    let roleless = app.keys.mint("tenant-a", "svc", &[], 600).unwrap();
    let (status, body) = app
        .call(reqwest::Method::GET, LIST, Some(&roleless), None)
        .await;
    assert_eq!(status, 403, "{body}");
    let path = format!("{LIST}/{id}");
    let (status, _) = app
        .call(
            reqwest::Method::DELETE,
            &path,
            Some(&app.token("tenant-b", Role::Admin)),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .call(
            reqwest::Method::DELETE,
            &path,
            Some(&app.token("tenant-a", Role::Csm)),
            None,
        )
        .await;
    assert_eq!(status, 403);
    let (status, body) = app
        .call(reqwest::Method::DELETE, &path, Some(&admin_a), None)
        .await;
    assert_eq!((status, body["status"].as_str()), (200, Some("revoked")));
    let (status, _) = app
        .call(reqwest::Method::DELETE, &path, Some(&admin_a), None)
        .await;
    assert_eq!(status, 404, "already revoked");

    // The read model other services use (ingress routes Connect events by it) follows.
    assert_eq!(
        app.count("SELECT count(*) AS n FROM integration.account_tenants")
            .await,
        0,
        "revoked"
    );

    // Audit trail: connect, reads, disconnect — and no secret in it.
    assert_eq!(app.count("SELECT count(*) AS n FROM integration.audit_log WHERE action = 'stripe.connect' AND tenant_id = 'tenant-a'").await, 1);
    assert_eq!(
        app.count(
            "SELECT count(*) AS n FROM integration.audit_log WHERE action = 'stripe.disconnect'"
        )
        .await,
        1
    );
    assert_eq!(app.count("SELECT count(*) AS n FROM integration.audit_log WHERE action = 'stripe.connections.read'").await, 2);
    assert_eq!(app.count("SELECT count(*) AS n FROM integration.audit_log WHERE detail::text LIKE '%rk_test_fake%'").await, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_keys_tokens_and_roles_are_refused_without_side_effects() {
    let app = TestApp::start(false).await;
    let admin = app.token("tenant-a", Role::Admin);
    let cases: Vec<(Option<String>, serde_json::Value, u16, &str)> = vec![
        (
            None,
            serde_json::json!({"restricted_key": "rk_test_fake"}),
            401,
            "authentication",
        ),
        (
            Some("not-a-jwt".into()),
            serde_json::json!({"restricted_key": "rk_test_fake"}),
            401,
            "authentication",
        ),
        (
            Some(
                app.keys
                    .mint("tenant-a", "u", &[Role::Admin], -300)
                    .unwrap(),
            ),
            serde_json::json!({"restricted_key": "rk_test_fake"}),
            401,
            "authentication",
        ),
        (
            Some(app.token("tenant-a", Role::Csm)),
            serde_json::json!({"restricted_key": "rk_test_fake"}),
            403,
            "admin",
        ),
        (
            Some(admin.clone()),
            serde_json::json!({}),
            400,
            "restricted_key",
        ),
        (
            Some(admin.clone()),
            serde_json::json!({"restricted_key": "pk_test_abc"}),
            400,
            "not a Stripe API key",
        ),
        (
            Some(admin.clone()),
            serde_json::json!({"restricted_key": "sk_test_fake"}),
            400,
            "secret key",
        ),
        (
            Some(admin.clone()),
            serde_json::json!({"restricted_key": "rk_live_abcdef"}),
            400,
            "live key",
        ),
        (
            Some(admin.clone()),
            serde_json::json!({"restricted_key": "rk_test_unknownkey"}),
            400,
            "refused the key",
        ),
        (
            Some(admin.clone()),
            serde_json::json!({"restricted_key": "rk_test_fake", "extra": 1}),
            400,
            "invalid JSON",
        ),
    ];
    for (token, body, status, needle) in cases {
        let (got, answer) = app
            .call(
                reqwest::Method::POST,
                CONNECT,
                token.as_deref(),
                Some(body.clone()),
            )
            .await;
        assert_eq!(got, status, "{body}: {answer}");
        assert!(answer.to_string().contains(needle), "{body}: {answer}");
        assert!(
            !answer.to_string().contains("rk_test_unknownkey"),
            "never echo keys: {answer}"
        );
    }
    let (status, _) = app
        .call(
            reqwest::Method::DELETE,
            &format!("{LIST}/not-a-uuid"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        app.count("SELECT count(*) AS n FROM integration.connections")
            .await,
        0
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn secret_keys_only_when_the_operator_allows_them() {
    let app = TestApp::start(true).await;
    let (status, body) = app
        .call(
            reqwest::Method::POST,
            CONNECT,
            Some(&app.token("tenant-a", Role::Admin)),
            Some(serde_json::json!({"restricted_key": "sk_test_fake"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["kind"], "secret_key");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rotating_the_master_key_reseals_every_secret() {
    let app = TestApp::start(false).await;
    let (status, body) = app
        .call(
            reqwest::Method::POST,
            CONNECT,
            Some(&app.token("tenant-a", Role::Admin)),
            Some(serde_json::json!({"restricted_key": "rk_test_fake"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = uuid::Uuid::parse_str(body["id"].as_str().unwrap()).unwrap();
    let (status, hook) = app
        .call(
            reqwest::Method::PUT,
            "/api/alerts/webhook",
            Some(&app.token("tenant-a", Role::Admin)),
            Some(serde_json::json!({"url": "https://hooks.example.com/cscx"})),
        )
        .await;
    assert_eq!(status, 200, "{hook}");
    let (status, _) = app
        .call(
            reqwest::Method::PUT,
            "/api/alerts/webhook",
            Some(&app.token("tenant-a", Role::Admin)),
            Some(serde_json::json!({"url": "http://hooks.example.com/cscx"})),
        )
        .await;
    assert_eq!(
        status, 400,
        "https required unless the operator allows http"
    );

    let new_key = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
    let mut keys = vec![("k2".to_string(), new_key.clone())];
    keys.extend(master());
    let rotated = Sealer::new(&keys).unwrap();
    let pool = platform::db::pool(&app.env.common.database).unwrap();
    assert_eq!(
        query_api::connections::reseal_all(&pool, &rotated)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        query_api::connections::reseal_all(&pool, &rotated)
            .await
            .unwrap(),
        0,
        "idempotent"
    );
    assert_eq!(
        query_api::alert_webhook::reseal_all(&pool, &rotated)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        query_api::alert_webhook::reseal_all(&pool, &rotated)
            .await
            .unwrap(),
        0
    );

    #[derive(QueryableByName)]
    struct Secret {
        #[diesel(sql_type = Bytea)]
        secret_sealed: Vec<u8>,
        #[diesel(sql_type = Text)]
        secret_key_id: String,
    }
    let mut conn = AsyncPgConnection::establish(&app.env.common.database.url)
        .await
        .unwrap();
    let row: Secret =
        diesel::sql_query("SELECT secret_sealed, secret_key_id FROM integration.connections")
            .get_result(&mut conn)
            .await
            .unwrap();
    assert_eq!(row.secret_key_id, "k2");
    // The old key can be retired: the new key alone opens it.
    let only_new = Sealer::new(&[("k2".to_string(), new_key)]).unwrap();
    let sealed = Sealed {
        key_id: row.secret_key_id,
        bytes: row.secret_sealed,
    };
    assert_eq!(
        only_new
            .open(
                &sealed,
                &query_api::connections::sealing_context("tenant-a", id)
            )
            .unwrap(),
        b"rk_test_fake"
    );
    let hook_row: Secret = diesel::sql_query(
        "SELECT secret_sealed, secret_key_id FROM integration.alert_webhooks WHERE tenant_id = 'tenant-a'",
    )
    .get_result(&mut conn)
    .await
    .unwrap();
    assert_eq!(hook_row.secret_key_id, "k2");
    let opened = only_new
        .open(
            &Sealed {
                key_id: hook_row.secret_key_id,
                bytes: hook_row.secret_sealed,
            },
            &platform::crypto::alert_webhook_context("tenant-a"),
        )
        .unwrap();
    assert_eq!(opened, hook["secret"].as_str().unwrap().as_bytes());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_oauth_round_trip_with_single_use_state() {
    let app = TestApp::start(false).await;
    let admin = app.token("tenant-a", Role::Admin);
    let (status, body) = app
        .call(
            reqwest::Method::POST,
            CONNECT,
            Some(&admin),
            Some(serde_json::json!({"oauth": true})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let authorize = url::Url::parse(body["authorize_url"].as_str().unwrap()).unwrap();
    let param = |u: &url::Url, k: &str| {
        u.query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(param(&authorize, "scope").as_deref(), Some("read_only"));
    assert_eq!(param(&authorize, "client_id").as_deref(), Some("ca_fake"));
    let state = param(&authorize, "state").unwrap();
    assert_eq!(state.len(), 64);

    // The admin approves at Stripe, which redirects the browser back with code and state.
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = no_redirects.get(authorize.as_str()).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 302);
    let back = url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(param(&back, "state").as_deref(), Some(state.as_str()));
    let callback = format!(
        "/api/integrations/stripe/callback?{}",
        back.query().unwrap()
    );

    // A forged state is refused and burns nothing.
    let forged = callback.replace(&state, &"0".repeat(64));
    let (status, _) = app.call(reqwest::Method::GET, &forged, None, None).await;
    assert_eq!(status, 400);

    let (status, conn) = app.call(reqwest::Method::GET, &callback, None, None).await;
    assert_eq!(status, 201, "{conn}");
    assert_eq!(conn["kind"], "oauth");
    assert!(conn["account_id"].as_str().unwrap().starts_with("acct_"));
    assert_eq!(
        conn["created_by"], "tenant-a-user",
        "attributed to the admin who started it"
    );
    assert!(!conn.to_string().contains("access_token"));

    // Replaying the callback (same state) is refused: single use.
    let (status, body) = app.call(reqwest::Method::GET, &callback, None, None).await;
    assert_eq!(status, 400, "{body}");

    // Visible to tenant A only; disconnecting deauthorizes at Stripe.
    let (_, list_b) = app
        .call(
            reqwest::Method::GET,
            LIST,
            Some(&app.token("tenant-b", Role::Admin)),
            None,
        )
        .await;
    assert!(list_b["data"].as_array().unwrap().is_empty());
    let (status, body) = app
        .call(
            reqwest::Method::DELETE,
            &format!("{LIST}/{}", conn["id"].as_str().unwrap()),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("revoked")),
        "{body}"
    );
    let deauthorized = app
        .fake
        .state()
        .read()
        .revoked_accounts
        .contains(conn["account_id"].as_str().unwrap());
    assert!(deauthorized, "Stripe was told to revoke our access");
    assert_eq!(app.count("SELECT count(*) AS n FROM integration.audit_log WHERE action IN ('stripe.oauth.start', 'stripe.connect', 'stripe.disconnect')").await, 3);
    app.stop().await;
}
