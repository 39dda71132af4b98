//! The review loop end to end: the matcher binary decides, query-api lists what waits for a
//! person and takes their decision, the matcher applies it. Tenancy, roles and bad input are
//! refused at the API with nothing published.

use std::time::Duration;

use contracts::{v1, Contract};
use platform::amqp::{Broker, Outgoing, Publisher};
use platform::testing::{ServiceProcess, TestEnv};
use query_api::auth::Role;
use serde_json::{json, Value};

const JWT: &[u8] = b"review-api-test-secret-review-api-test!!";
const TENANT: &str = "tenant-review";

async fn publish<M: Contract>(publisher: &Publisher, message: &M, id: &str) {
    publisher
        .publish(&Outgoing::protobuf(
            M::EXCHANGE,
            message.routing_key(),
            id,
            M::TYPE,
            TENANT,
            message.encode_to_vec(),
        ))
        .await
        .unwrap();
}

fn customer(id: &str, email: &str, name: &str, at: i64) -> v1::CustomerUpserted {
    v1::CustomerUpserted {
        context: Some(v1::FactContext {
            tenant_id: TENANT.into(),
            account_id: "acct_platform".into(),
            occurred_at: at,
            source: "backfill".into(),
            event_id: String::new(),
        }),
        stripe_customer_id: id.into(),
        email: email.into(),
        name: name.into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn people_review_and_decide_through_the_api() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let env = TestEnv::new();
    let mut matcher = ServiceProcess::spawn(env!("CARGO_BIN_EXE_matcher"), "matcher", &env, &[]);
    matcher.wait_for_status("/readyz", 200).await;

    let api = query_api::testing::InProcess::start(
        env.common.clone(),
        query_api::testing::settings(false),
        JWT,
        [3u8; 32],
    )
    .await;

    let broker = Broker::new(env.common.amqp.clone(), matcher::spec().topology);
    broker.connection().await.unwrap();
    let publisher = Publisher::new(broker.clone());
    for (id, name, domain) in [
        ("acc_nw_traders", "Northwind Traders", "northwind.com"),
        ("acc_nw_logistics", "Northwind Logistics", "northwind.com"),
        ("acc_acme", "Acme Inc", "acme.com"),
    ] {
        let account = v1::CscxAccountUpserted {
            account_id: id.into(),
            name: name.into(),
            domains: vec![domain.into()],
            updated_at_ms: 1_000,
            ..Default::default()
        };
        publish(&publisher, &account, &format!("acct-{id}")).await;
    }
    publish(
        &publisher,
        &customer("cus_shared", "ops@northwind.com", "Northwind", 10),
        "c1",
    )
    .await;
    publish(
        &publisher,
        &customer("cus_free", "pat@gmail.com", "Pat Lee", 10),
        "c2",
    )
    .await;
    publish(
        &publisher,
        &customer("cus_acme", "ap@acme.com", "Acme", 10),
        "c3",
    )
    .await;

    let keys = &api.keys;
    let admin = keys.mint(TENANT, "admin-ann", &[Role::Admin], 600).unwrap();
    let csm = keys.mint(TENANT, "csm-carl", &[Role::Csm], 600).unwrap();
    let stranger = keys
        .mint("tenant-other", "admin-x", &[Role::Admin], 600)
        .unwrap();
    use reqwest::Method;

    // The review list: the ambiguous and the unmatched customer, never the linked one.
    let mut review = Value::Null;
    for _ in 0..100 {
        let (status, body) = api
            .call(Method::GET, "/api/matching/review", Some(&csm), None)
            .await;
        assert_eq!(status, 200, "{body}");
        if body["data"].as_array().is_some_and(|d| d.len() == 2) {
            review = body;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rows = review["data"].as_array().expect("two customers to review");
    assert_eq!(rows[0]["stripe_customer_id"], "cus_free");
    assert_eq!(rows[0]["status"], "unmatched");
    assert_eq!(rows[1]["stripe_customer_id"], "cus_shared");
    assert_eq!(rows[1]["status"], "ambiguous");
    assert_eq!(rows[1]["candidates"].as_array().unwrap().len(), 2);
    let (_, page) = api
        .call(
            Method::GET,
            "/api/matching/review?status=ambiguous&limit=1",
            Some(&csm),
            None,
        )
        .await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    assert_eq!(page["has_more"], false);

    // Refused with nothing published: no token, CSM role, other tenant, bad input.
    let decision = "/api/matching/customers/cus_shared/decision";
    let set = json!({"action": "set", "account_id": "acc_nw_traders", "note": "per finance"});
    assert_eq!(
        api.call(Method::POST, decision, None, Some(set.clone()))
            .await
            .0,
        401
    );
    assert_eq!(
        api.call(Method::POST, decision, Some(&csm), Some(set.clone()))
            .await
            .0,
        403
    );
    assert_eq!(
        api.call(Method::POST, decision, Some(&stranger), Some(set.clone()))
            .await
            .0,
        404
    );
    assert_eq!(
        api.call(
            Method::GET,
            "/api/matching/customers/cus_shared",
            Some(&stranger),
            None
        )
        .await
        .0,
        404
    );
    let (s, body) = api
        .call(Method::GET, "/api/matching/review", Some(&stranger), None)
        .await;
    assert_eq!((s, body["data"].as_array().map(Vec::len)), (200, Some(0)));
    for bad in [
        json!({"action": "merge"}),
        json!({"action": "set"}),
        json!({"action": "set", "account_id": "acc_unknown"}),
        json!({"action": "clear", "account_id": "acc_acme"}),
        json!({"action": "set", "account_id": "acc_acme", "extra": 1}),
    ] {
        let (status, body) = api
            .call(Method::POST, decision, Some(&admin), Some(bad.clone()))
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["error"]["message"].as_str().is_some());
    }
    let (status, _) = api
        .call(
            Method::POST,
            "/api/matching/customers/cus_free/decision",
            Some(&admin),
            Some(json!({"action": "confirm"})),
        )
        .await;
    assert_eq!(status, 409, "nothing to confirm");
    assert_eq!(
        api.call(
            Method::POST,
            "/api/matching/customers/not-a-customer/decision",
            Some(&admin),
            Some(set.clone())
        )
        .await
        .0,
        400
    );

    // The admin decides; the matcher applies it; the customer leaves the review list.
    let (status, accepted) = api
        .call(Method::POST, decision, Some(&admin), Some(set))
        .await;
    assert_eq!(status, 202, "{accepted}");
    let mut detail = Value::Null;
    for _ in 0..100 {
        let (_, body) = api
            .call(
                Method::GET,
                "/api/matching/customers/cus_shared",
                Some(&csm),
                None,
            )
            .await;
        if body["link"]["status"] == "manual" {
            detail = body;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(detail["link"]["account_id"], "acc_nw_traders", "{detail}");
    assert_eq!(detail["link"]["decided_by"], "admin-ann");
    assert_eq!(detail["decisions"][0]["request_id"], accepted["request_id"]);
    assert_eq!(detail["decisions"][0]["outcome"], "applied");
    assert_eq!(detail["decisions"][0]["note"], "per finance");
    let (_, body) = api
        .call(Method::GET, "/api/matching/review", Some(&csm), None)
        .await;
    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["stripe_customer_id"].as_str())
        .collect();
    assert_eq!(ids, ["cus_free"]);

    // Audited: who read, who decided.
    let mut conn = <diesel_async::AsyncPgConnection as diesel_async::AsyncConnection>::establish(
        &env.common.database.url,
    )
    .await
    .unwrap();
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let n: Vec<N> = diesel_async::RunQueryDsl::load(
        diesel::sql_query(
            "SELECT count(*) AS n FROM integration.audit_log WHERE action = 'matching.decision.requested' AND actor = 'admin-ann' AND target = 'cus_shared'",
        ),
        &mut conn,
    )
    .await
    .unwrap();
    assert_eq!(
        n[0].n, 1,
        "only the accepted decision is audited as requested"
    );

    api.stop().await;
    assert!(matcher.terminate().success());
    env.cleanup(&[&*broker]).await;
}
