//! Backfill against the Stripe fake, compared with the fake's truth file for every customer:
//! subscription statuses and MRR, invoice counts by status, failed payment attempts and
//! card expiries. Also: a backfill stopped halfway through its parallel lists resumes each
//! list from its cursor, and a failed run is recorded failed and resumed on redelivery.

use std::collections::BTreeMap;

use diesel::{ExpressionMethods as _, NullableExpressionMethods as _, QueryDsl as _};
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
    setup_with(customers, seed, 0.0).await
}

/// `error_rate`: the fraction of the fake's answers that are 500/503.
async fn setup_with(customers: usize, seed: u64, error_rate: f64) -> Setup {
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
        error_rate,
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

/// Customer, payment method, expiry month and year, last four digits.
type CardRow = (
    Option<String>,
    String,
    Option<i16>,
    Option<i16>,
    Option<String>,
);

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
    let cards: Vec<CardRow> = schema::payment_methods::table
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

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Facts queued for the `billing` exchange with this routing key.
async fn outbox_count(conn: &mut diesel_async::AsyncPgConnection, key: &str) -> i64 {
    diesel::sql_query("SELECT count(*) AS n FROM billing.outbox WHERE routing_key = $1")
        .bind::<diesel::sql_types::Text, _>(key)
        .get_result::<Count>(conn)
        .await
        .unwrap()
        .n
}

async fn stored_count(conn: &mut diesel_async::AsyncPgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql)
        .get_result::<Count>(conn)
        .await
        .unwrap()
        .n
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

    // Every customer is announced to the matcher, every subscription to the risk engine.
    let mut conn = s.pool.get().await.unwrap();
    let customers = s
        .truth
        .customers
        .iter()
        .filter(|c| c.account == s.truth.platform_account)
        .count() as i64;
    let subscriptions: i64 = s
        .truth
        .customers
        .iter()
        .filter(|c| c.account == s.truth.platform_account)
        .map(|c| c.subscriptions.len() as i64)
        .sum();
    assert_eq!(
        outbox_count(&mut conn, "customer.upserted").await,
        customers
    );
    assert_eq!(
        outbox_count(&mut conn, "subscription.changed").await,
        subscriptions
    );

    // Unpaid invoices and recent failed charges reach the risk engine on the day Stripe is
    // connected; the paid majority does not.
    let unpaid = stored_count(
        &mut conn,
        "SELECT count(*) AS n FROM billing.stripe_invoices WHERE status IN ('open', 'uncollectible')",
    )
    .await;
    let recent_failures = stored_count(
        &mut conn,
        "SELECT count(*) AS n FROM billing.payment_attempts          WHERE outcome = 'failed' AND attempted_at >= now() - interval '30 days'",
    )
    .await;
    assert!(
        unpaid > 0 && recent_failures > 0,
        "the seed has payment trouble"
    );
    let invoices_stored = stored_count(
        &mut conn,
        "SELECT count(*) AS n FROM billing.stripe_invoices",
    )
    .await;
    assert!(invoices_stored > 2 * unpaid, "most invoices are paid");
    assert_eq!(outbox_count(&mut conn, "invoice.updated").await, unpaid);
    assert_eq!(
        outbox_count(&mut conn, "payment.failed").await,
        recent_failures
    );

    // A second run changes nothing, records no spurious history and announces nothing anew.
    let changes_before: i64 = schema::subscription_changes::table
        .count()
        .get_result(&mut conn)
        .await
        .unwrap();
    let facts_before = stored_count(&mut conn, "SELECT count(*) AS n FROM billing.outbox WHERE routing_key IN ('invoice.updated', 'payment.failed')").await;
    backfill::run(&s.pool, &api, &s.scope, uuid::Uuid::new_v4())
        .await
        .unwrap();
    let changes_after: i64 = schema::subscription_changes::table
        .count()
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(changes_before, changes_after);
    let facts_after = stored_count(&mut conn, "SELECT count(*) AS n FROM billing.outbox WHERE routing_key IN ('invoice.updated', 'payment.failed')").await;
    assert_eq!(
        facts_before, facts_after,
        "a re-run re-announces unchanged invoices or charges"
    );
    assert_matches_truth(&seen(&s.pool, &s.scope).await, &s.truth);
    drop(conn);
    s.fake.stop().await;
    s.env.cleanup(&[]).await;
}

/// Returns once no pooled connection has been checked out for 200 ms (10 s at most).
async fn settle(pool: &db::PgPool) {
    let mut idle_polls = 0;
    for _ in 0..500 {
        let status = pool.status();
        idle_polls = if status.size == status.available {
            idle_polls + 1
        } else {
            0
        };
        if idle_polls == 10 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the pool never went idle: {:?}", pool.status());
}

/// Per list: (pages committed, done), from `sync_run_cursors`.
async fn cursors(pool: &db::PgPool, run_id: uuid::Uuid) -> BTreeMap<String, (i64, bool)> {
    use backfill::sync_run_cursors as c;
    let mut conn = pool.get().await.unwrap();
    let rows: Vec<(String, i64, bool)> = c::table
        .filter(c::run_id.eq(run_id))
        .select((c::list, c::pages, c::done))
        .load(&mut conn)
        .await
        .unwrap();
    rows.into_iter()
        .map(|(list, pages, done)| (list, (pages, done)))
        .collect()
}

async fn run_of(pool: &db::PgPool, connection: uuid::Uuid) -> (uuid::Uuid, String, i64, i64) {
    let mut conn = pool.get().await.unwrap();
    schema::sync_runs::table
        .filter(schema::sync_runs::connection_id.eq(connection))
        .select((
            schema::sync_runs::id,
            schema::sync_runs::stage,
            schema::sync_runs::objects_done,
            schema::sync_runs::requests,
        ))
        .first(&mut conn)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backfill_killed_halfway_resumes_from_its_cursor() {
    let s = setup(250, 5).await;
    let connection = uuid::Uuid::new_v4();
    let mut config = ApiConfig::new(s.fake.base_url(), SecretString::from("rk_test_fake"), false);
    config.requests_per_second = 1000;
    let dying = StripeApi::new(config.clone()).unwrap();
    let walk = backfill::run(&s.pool, &dying, &s.scope, connection);
    // Kill the walk in its parallel phase: customers, subscriptions (started once prices and
    // coupons were stored), invoices and charges have each committed a page, and invoices
    // or charges still have pages to go.
    let parallel = ["customers", "subscriptions", "invoices", "charges"];
    let at_kill = tokio::select! {
        r = walk => panic!("the backfill finished before it could be interrupted: {r:?}"),
        lists = async {
            loop {
                let runs: Vec<uuid::Uuid> = {
                    let mut conn = s.pool.get().await.unwrap();
                    schema::sync_runs::table
                        .filter(schema::sync_runs::connection_id.eq(connection))
                        .select(schema::sync_runs::id)
                        .load(&mut conn)
                        .await
                        .unwrap()
                };
                if let [run, ..] = runs.as_slice() {
                    let lists = cursors(&s.pool, *run).await;
                    let started = parallel.iter().all(|l| lists.get(*l).is_some_and(|(p, _)| *p > 0));
                    let unfinished = ["invoices", "charges"].iter().any(|l| !lists[*l].1);
                    if started && unfinished {
                        return lists;
                    }
                }
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
        } => lists,
    };
    assert!(
        parallel.iter().filter(|l| at_kill[**l].0 > 0).count() == parallel.len(),
        "{at_kill:?}"
    );
    // A page whose commit was already under way still lands (its own task holds a pooled
    // connection until it commits): wait until no connection has been out for a while.
    settle(&s.pool).await;
    let (run_id, stage, done, persisted_requests) = run_of(&s.pool, connection).await;
    let committed = cursors(&s.pool, run_id).await;
    let committed_pages: i64 = committed.values().map(|(p, _)| p).sum();
    assert_ne!(stage, "done");
    assert!(done > 0);
    assert!(committed_pages > 0);
    assert!(persisted_requests >= committed_pages);
    assert!(persisted_requests <= dying.usage().requests as i64);

    // The redelivered job resumes the same run and ends equal to the truth.
    let api = StripeApi::new(config.clone()).unwrap();
    let progress = backfill::run(&s.pool, &api, &s.scope, connection)
        .await
        .unwrap();
    assert_eq!(progress.stage, backfill::Stage::Done);
    assert_eq!(progress.run_id, run_id);
    let mut conn = s.pool.get().await.unwrap();
    let (runs, attempts): (i64, i32) = schema::sync_runs::table
        .filter(schema::sync_runs::connection_id.eq(connection))
        .group_by(schema::sync_runs::connection_id)
        .select((
            diesel::dsl::count_star(),
            diesel::dsl::max(schema::sync_runs::attempts).assume_not_null(),
        ))
        .first(&mut conn)
        .await
        .unwrap();
    assert_eq!(runs, 1, "resumed, not restarted");
    assert_eq!(attempts, 2);
    assert_matches_truth(&seen(&s.pool, &s.scope).await, &s.truth);
    // Totals stay meaningful: the objects of every list, the requests of both attempts.
    let (_, stage, done, requests) = run_of(&s.pool, connection).await;
    assert_eq!(stage, "done");
    assert_eq!(done, progress.objects_done);
    assert_eq!(
        requests,
        persisted_requests + api.usage().requests as i64,
        "requests over both attempts"
    );
    assert!(cursors(&s.pool, run_id)
        .await
        .values()
        .all(|(_, done)| *done));

    // A cold walk of the same account (a new run) needs every page; the resumed walk
    // skipped exactly the pages committed before the kill.
    let cold = StripeApi::new(config).unwrap();
    let full = backfill::run(&s.pool, &cold, &s.scope, uuid::Uuid::new_v4())
        .await
        .unwrap();
    assert_eq!(full.objects_done, progress.objects_done);
    assert!(api.usage().requests < cold.usage().requests);
    assert_eq!(
        api.usage().requests as i64,
        cold.usage().requests as i64 - committed_pages,
        "resumed from every list's cursor"
    );
    assert_matches_truth(&seen(&s.pool, &s.scope).await, &s.truth);
    drop(conn);
    s.fake.stop().await;
    s.env.cleanup(&[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_backfill_is_recorded_and_resumed_on_redelivery() {
    // One answer in five is a 500/503; a client that never retries fails the run.
    let s = setup_with(150, 9, 0.2).await;
    let connection = uuid::Uuid::new_v4();
    let mut config = ApiConfig::new(s.fake.base_url(), SecretString::from("rk_test_fake"), false);
    config.requests_per_second = 1000;
    config.base_backoff = std::time::Duration::from_millis(1);
    config.max_backoff = std::time::Duration::from_millis(5);
    let fragile = StripeApi::new(ApiConfig {
        max_attempts: 1,
        ..config.clone()
    })
    .unwrap();
    let error = backfill::run(&s.pool, &fragile, &s.scope, connection)
        .await
        .unwrap_err();
    assert!(error.is_transient(), "{error}");
    let mut conn = s.pool.get().await.unwrap();
    let (status, stage, message): (String, String, Option<String>) = schema::sync_runs::table
        .filter(schema::sync_runs::connection_id.eq(connection))
        .select((
            schema::sync_runs::status,
            schema::sync_runs::stage,
            schema::sync_runs::error,
        ))
        .first(&mut conn)
        .await
        .unwrap();
    assert_eq!(status, "failed");
    assert_ne!(stage, "done");
    assert!(message.is_some_and(|m| m.contains("gave up")));
    // The failed attempt is over when `run` returns: no page of a sibling list commits
    // later (it would move a cursor under the redelivery's walk).
    let (run_id, ..) = run_of(&s.pool, connection).await;
    let after_failure = cursors(&s.pool, run_id).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(cursors(&s.pool, run_id).await, after_failure);

    // Redelivered with retries: the same run resumes and succeeds.
    let api = StripeApi::new(config).unwrap();
    let progress = backfill::run(&s.pool, &api, &s.scope, connection)
        .await
        .unwrap();
    assert_eq!(progress.stage, backfill::Stage::Done);
    let (status, error, runs): (String, Option<String>, i64) = schema::sync_runs::table
        .filter(schema::sync_runs::connection_id.eq(connection))
        .group_by((schema::sync_runs::status, schema::sync_runs::error))
        .select((
            schema::sync_runs::status,
            schema::sync_runs::error,
            diesel::dsl::count_star(),
        ))
        .first(&mut conn)
        .await
        .unwrap();
    assert_eq!((status.as_str(), error, runs), ("succeeded", None, 1));
    assert_matches_truth(&seen(&s.pool, &s.scope).await, &s.truth);
    drop(conn);
    s.fake.stop().await;
    s.env.cleanup(&[]).await;
}
