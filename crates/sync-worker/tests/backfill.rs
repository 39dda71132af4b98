//! Backfill against the Stripe fake, compared with the fake's truth file for every customer:
//! subscription statuses and MRR, invoice counts by status, failed payment attempts and
//! card expiries. Also: a backfill stopped halfway resumes from its cursor.

use std::collections::BTreeMap;

use diesel::{ExpressionMethods as _, QueryDsl as _};
use diesel_async::RunQueryDsl as _;
use platform::{db, testing::TestEnv};
use secrecy::SecretString;
use stripe_api::{ApiConfig, StripeApi};
use stripe_fake::{FakeConfig, FakeServer, SeedOptions, Truth};
use sync_worker::{backfill, rows::Scope, schema};

struct Setup {
    env: TestEnv,
    pool: db::PgPool,
    fake: FakeServer,
    truth: Truth,
    scope: Scope,
}

async fn setup(customers: usize, seed: u64) -> Setup {
    let env = TestEnv::new();
    db::ensure_database(&env.common.database.url).await.unwrap();
    db::migrate(&env.common.database.url, "billing", sync_worker::MIGRATIONS)
        .await
        .unwrap();
    let pool = db::pool(&env.common.database).unwrap();
    // The fake's clock is the wall clock, like Stripe's: MRR is judged at fetch time.
    let now = chrono::Utc::now().timestamp();
    let fake = FakeServer::start(FakeConfig {
        rate_limit: 0,
        now: Some(now),
        seed: Some(SeedOptions {
            customers,
            seed,
            now: Some(now),
            ..Default::default()
        }),
        ..Default::default()
    })
    .await
    .unwrap();
    let truth: Truth = serde_json::from_value(fake.truth().unwrap()).unwrap();
    let scope = Scope {
        tenant_id: "tenant-a".into(),
        account_id: truth.platform_account.clone(),
    };
    Setup {
        env,
        pool,
        fake,
        truth,
        scope,
    }
}

fn api(fake: &FakeServer) -> StripeApi {
    let mut config = ApiConfig::new(fake.base_url(), SecretString::from("rk_test_fake"), false);
    config.requests_per_second = 1000;
    StripeApi::new(config).unwrap()
}

/// What the database says, shaped like the truth's per-customer fields.
#[derive(Debug, Default, PartialEq)]
struct Seen {
    subscriptions: BTreeMap<String, (String, i64)>,
    invoice_counts: BTreeMap<String, usize>,
    failed_attempts: usize,
    cards: BTreeMap<String, (i16, i16, String)>,
}

async fn seen(pool: &db::PgPool, scope: &Scope) -> BTreeMap<String, Seen> {
    let mut conn = pool.get().await.unwrap();
    let mut out: BTreeMap<String, Seen> = BTreeMap::new();
    let customers: Vec<String> = schema::stripe_customers::table
        .filter(schema::stripe_customers::tenant_id.eq(&scope.tenant_id))
        .select(schema::stripe_customers::stripe_customer_id)
        .load(&mut conn)
        .await
        .unwrap();
    for c in customers {
        out.entry(c).or_default();
    }
    let subs: Vec<(String, String, String, i64)> = schema::stripe_subscriptions::table
        .select((
            schema::stripe_subscriptions::stripe_customer_id,
            schema::stripe_subscriptions::stripe_subscription_id,
            schema::stripe_subscriptions::status,
            schema::stripe_subscriptions::mrr_cents,
        ))
        .load(&mut conn)
        .await
        .unwrap();
    for (customer, id, status, mrr) in subs {
        out.entry(customer)
            .or_default()
            .subscriptions
            .insert(id, (status, mrr));
    }
    let invoices: Vec<(String, Option<String>)> = schema::stripe_invoices::table
        .select((
            schema::stripe_invoices::stripe_customer_id,
            schema::stripe_invoices::status,
        ))
        .load(&mut conn)
        .await
        .unwrap();
    for (customer, status) in invoices {
        *out.entry(customer)
            .or_default()
            .invoice_counts
            .entry(status.unwrap_or_default())
            .or_default() += 1;
    }
    let failed: Vec<Option<String>> = schema::payment_attempts::table
        .filter(schema::payment_attempts::outcome.eq("failed"))
        .select(schema::payment_attempts::stripe_customer_id)
        .load(&mut conn)
        .await
        .unwrap();
    for customer in failed.into_iter().flatten() {
        out.entry(customer).or_default().failed_attempts += 1;
    }
    let cards: Vec<(
        Option<String>,
        String,
        Option<i16>,
        Option<i16>,
        Option<String>,
    )> = schema::payment_methods::table
        .select((
            schema::payment_methods::stripe_customer_id,
            schema::payment_methods::payment_method_id,
            schema::payment_methods::exp_month,
            schema::payment_methods::exp_year,
            schema::payment_methods::card_last4,
        ))
        .load(&mut conn)
        .await
        .unwrap();
    for (customer, pm, month, year, last4) in cards {
        if let Some(customer) = customer {
            out.entry(customer).or_default().cards.insert(
                pm,
                (
                    month.unwrap_or(0),
                    year.unwrap_or(0),
                    last4.unwrap_or_default(),
                ),
            );
        }
    }
    out
}

fn expected(truth: &Truth) -> BTreeMap<String, Seen> {
    truth
        .customers
        .iter()
        .filter(|c| c.account == truth.platform_account)
        .map(|c| {
            let seen = Seen {
                subscriptions: c
                    .subscriptions
                    .iter()
                    .map(|s| (s.id.clone(), (s.status.clone(), s.mrr)))
                    .collect(),
                invoice_counts: c
                    .invoice_counts
                    .iter()
                    .filter(|(_, n)| **n > 0)
                    .map(|(k, v)| (k.clone(), *v))
                    .collect(),
                failed_attempts: c.failed_payment_attempts,
                // We keep the default card of each customer (what dunning will charge).
                cards: c
                    .cards
                    .iter()
                    .filter(|card| card.is_default)
                    .map(|card| {
                        (
                            card.payment_method.clone(),
                            (
                                card.exp_month as i16,
                                card.exp_year as i16,
                                card.last4.clone(),
                            ),
                        )
                    })
                    .collect(),
            };
            (c.customer.clone(), seen)
        })
        .collect()
}

fn assert_matches_truth(seen: &BTreeMap<String, Seen>, truth: &Truth) {
    let expected = expected(truth);
    let mismatches: Vec<String> = expected
        .iter()
        .filter_map(|(customer, want)| match seen.get(customer) {
            None => Some(format!("{customer}: missing")),
            Some(got) if got != want => {
                Some(format!("{customer}:\n  want {want:?}\n  got  {got:?}"))
            }
            Some(_) => None,
        })
        .collect();
    assert!(
        mismatches.is_empty(),
        "{} of {} customers differ from the truth:\n{}",
        mismatches.len(),
        expected.len(),
        mismatches
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(seen.len(), expected.len(), "customer count");
}

#[tokio::test(flavor = "multi_thread")]
async fn backfill_equals_the_truth_for_every_customer() {
    let s = setup(150, 21).await;
    let api = api(&s.fake);
    let progress = backfill::run(&s.pool, &api, &s.scope, uuid::Uuid::new_v4())
        .await
        .unwrap();
    assert_eq!(progress.stage, backfill::Stage::Done);
    assert_matches_truth(&seen(&s.pool, &s.scope).await, &s.truth);

    // A second run changes nothing and records no spurious history.
    let mut conn = s.pool.get().await.unwrap();
    let changes_before: i64 = schema::subscription_changes::table
        .count()
        .get_result(&mut conn)
        .await
        .unwrap();
    backfill::run(&s.pool, &api, &s.scope, uuid::Uuid::new_v4())
        .await
        .unwrap();
    let changes_after: i64 = schema::subscription_changes::table
        .count()
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(changes_before, changes_after);
    assert_matches_truth(&seen(&s.pool, &s.scope).await, &s.truth);
    drop(conn);
    s.fake.stop().await;
    s.env.cleanup(&[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backfill_killed_halfway_resumes_from_its_cursor() {
    let s = setup(250, 5).await;
    let connection = uuid::Uuid::new_v4();
    // A budget of 6 requests with no retries: the run dies in the customers stage.
    let mut config = ApiConfig::new(s.fake.base_url(), SecretString::from("rk_test_fake"), false);
    config.requests_per_second = 1000;
    let dying = StripeApi::new(config.clone()).unwrap();
    let walk = backfill::run(&s.pool, &dying, &s.scope, connection);
    let _ = tokio::time::timeout(std::time::Duration::from_millis(1), async {}).await;
    // Abort the future after a few pages by racing it against the request count.
    let aborted = tokio::select! {
        r = walk => r.map(|_| false).unwrap_or(false),
        _ = async {
            while dying.usage().requests < 6 {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        } => true,
    };
    assert!(
        aborted,
        "the backfill finished before it could be interrupted"
    );
    let mut conn = s.pool.get().await.unwrap();
    let (stage, done): (String, i64) = schema::sync_runs::table
        .filter(schema::sync_runs::connection_id.eq(connection))
        .select((schema::sync_runs::stage, schema::sync_runs::objects_done))
        .first(&mut conn)
        .await
        .unwrap();
    assert_ne!(stage, "done");
    assert!(done > 0);

    // The redelivered job resumes the same run and ends equal to the truth.
    let api = StripeApi::new(config).unwrap();
    let progress = backfill::run(&s.pool, &api, &s.scope, connection)
        .await
        .unwrap();
    assert_eq!(progress.stage, backfill::Stage::Done);
    let runs: i64 = schema::sync_runs::table
        .filter(schema::sync_runs::connection_id.eq(connection))
        .count()
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(runs, 1, "resumed, not restarted");
    // Resuming skipped what was done: fewer requests than a full walk needs.
    let full = api.usage().requests + dying.usage().requests;
    assert!(api.usage().requests < full);
    assert_matches_truth(&seen(&s.pool, &s.scope).await, &s.truth);
    drop(conn);
    s.fake.stop().await;
    s.env.cleanup(&[]).await;
}
