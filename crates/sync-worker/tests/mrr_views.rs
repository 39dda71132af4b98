//! `billing.customer_mrr` after a backfill equals the fake's truth: MRR per customer and
//! currency, and ARR = 12 × MRR.

use std::collections::BTreeMap;

use diesel_async::RunQueryDsl as _;
use platform::{db, testing::TestEnv};
use secrecy::SecretString;
use stripe_api::{ApiConfig, StripeApi};
use stripe_fake::{FakeConfig, FakeServer, SeedOptions, Truth};
use sync_worker::{backfill, rows::Scope};

#[derive(diesel::QueryableByName)]
struct Row {
    #[diesel(sql_type = diesel::sql_types::Text)]
    stripe_customer_id: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    currency: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    mrr_cents: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    arr_cents: i64,
}

#[tokio::test(flavor = "multi_thread")]
async fn customer_mrr_matches_the_truth() {
    let env = TestEnv::new();
    db::ensure_database(&env.common.database.url).await.unwrap();
    db::migrate(&env.common.database.url, "billing", sync_worker::MIGRATIONS)
        .await
        .unwrap();
    let pool = db::pool(&env.common.database).unwrap();
    let now = chrono::Utc::now().timestamp();
    let fake = FakeServer::start(FakeConfig {
        rate_limit: 0,
        now: Some(now),
        seed: Some(SeedOptions {
            customers: 200,
            seed: 99,
            now: Some(now),
            ..Default::default()
        }),
        ..Default::default()
    })
    .await
    .unwrap();
    let truth: Truth = serde_json::from_value(fake.truth().unwrap()).unwrap();
    let scope = Scope {
        tenant_id: "t".into(),
        account_id: truth.platform_account.clone(),
    };
    let mut config = ApiConfig::new(fake.base_url(), SecretString::from("rk_test_fake"), false);
    config.requests_per_second = 1000;
    let api = StripeApi::new(config).unwrap();
    backfill::run(&pool, &api, &scope, uuid::Uuid::new_v4())
        .await
        .unwrap();

    let mut conn = pool.get().await.unwrap();
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT stripe_customer_id, currency, mrr_cents, arr_cents FROM billing.customer_mrr WHERE mrr_cents <> 0",
    )
    .load(&mut conn)
    .await
    .unwrap();
    let mut seen: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for r in &rows {
        assert_eq!(r.arr_cents, r.mrr_cents * 12);
        seen.entry(r.stripe_customer_id.clone())
            .or_default()
            .insert(r.currency.clone(), r.mrr_cents);
    }
    let want: BTreeMap<String, BTreeMap<String, i64>> = truth
        .customers
        .iter()
        .filter(|c| c.account == truth.platform_account)
        .map(|c| {
            let mrr: BTreeMap<String, i64> = c
                .mrr
                .iter()
                .filter(|(_, v)| **v != 0)
                .map(|(k, v)| (k.clone(), *v))
                .collect();
            (c.customer.clone(), mrr)
        })
        .filter(|(_, mrr)| !mrr.is_empty())
        .collect();
    assert_eq!(seen, want);
    let total_mrr: BTreeMap<String, i64> = rows.iter().fold(BTreeMap::new(), |mut acc, r| {
        *acc.entry(r.currency.clone()).or_default() += r.mrr_cents;
        acc
    });
    // The truth's `totals.mrr` rounds once over unrounded amounts; MRR is stored rounded
    // per subscription, so the comparable total is the sum of the per-customer figures.
    let truth_total: BTreeMap<String, i64> =
        want.values()
            .flatten()
            .fold(BTreeMap::new(), |mut acc, (k, v)| {
                *acc.entry(k.clone()).or_default() += v;
                acc
            });
    assert_eq!(total_mrr, truth_total);
    drop(conn);
    fake.stop().await;
    env.cleanup(&[]).await;
}
