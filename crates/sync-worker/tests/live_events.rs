//! Live events against the real Postgres and the Stripe fake: after a backfill, mutations
//! at the fake produce events; delivering each of them three times in shuffled order
//! (same-second ties included) leaves the database equal to the fake's state, with each
//! event applied once and its facts queued once.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use contracts::v1::StripeEventReceived;
use diesel::{ExpressionMethods as _, QueryDsl as _};
use diesel_async::RunQueryDsl as _;
use platform::amqp::{Handler as _, Incoming};
use platform::crypto::Sealer;
use platform::{db, testing::TestEnv};
use prost::Message as _;
use rand::seq::SliceRandom as _;
use serde_json::{json, Value};
use stripe_fake::{FakeConfig, FakeServer, SeedOptions, Truth};
use sync_worker::connections::Connections;
use sync_worker::events::EventApplier;
use sync_worker::{backfill, schema};
use uuid::Uuid;

const TENANT: &str = "tenant-live";

fn sealer() -> Sealer {
    let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    Sealer::new(&[("k1".into(), key)]).unwrap()
}

struct Setup {
    env: TestEnv,
    pool: db::PgPool,
    fake: FakeServer,
    truth: Truth,
    connections: Arc<Connections>,
    connection: Uuid,
    http: reqwest::Client,
}

async fn setup() -> Setup {
    let env = TestEnv::new();
    let url = &env.common.database.url;
    db::ensure_database(url).await.unwrap();
    db::migrate(url, "billing", sync_worker::MIGRATIONS)
        .await
        .unwrap();
    db::migrate(url, "integration", query_api::MIGRATIONS)
        .await
        .unwrap();
    let pool = db::pool(&env.common.database).unwrap();
    let now = chrono::Utc::now().timestamp();
    let fake = FakeServer::start(FakeConfig {
        rate_limit: 0,
        now: Some(now),
        seed: Some(SeedOptions {
            customers: 40,
            seed: 17,
            now: Some(now),
            ..Default::default()
        }),
        ..Default::default()
    })
    .await
    .unwrap();
    let truth: Truth = serde_json::from_value(fake.truth().unwrap()).unwrap();

    // A restricted-key connection, sealed the way query-api seals it.
    let sealer = sealer();
    let mut conn = pool.get().await.unwrap();
    let connection = query_api::testing::store_restricted_key_connection(
        &mut conn,
        &sealer,
        TENANT,
        &truth.platform_account,
    )
    .await
    .unwrap();
    let connections = Arc::new(Connections::new(
        pool.clone(),
        Arc::new(sealer),
        fake.base_url(),
        1000,
    ));
    Setup {
        env,
        pool,
        fake,
        truth,
        connections,
        connection,
        http: reqwest::Client::new(),
    }
}

impl Setup {
    async fn admin(&self, path: &str, body: Value) -> Value {
        let resp = self
            .http
            .post(format!("{}_admin/{path}", self.fake.base_url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert!(status.is_success(), "{path}: {body}");
        body
    }

    async fn list(&self, path: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut url = format!("{}v1/{path}", self.fake.base_url());
            url.push_str(if path.contains('?') { "&" } else { "?" });
            url.push_str("limit=100");
            if let Some(a) = &after {
                url.push_str(&format!("&starting_after={a}"));
            }
            let page: Value = self
                .http
                .get(url)
                .bearer_auth("sk_test_fake")
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let data = page["data"].as_array().unwrap().clone();
            after = data
                .last()
                .and_then(|o| o["id"].as_str())
                .map(str::to_owned);
            out.extend(data);
            if page["has_more"] != json!(true) {
                return out;
            }
        }
    }
}

fn delivery(event: &Value) -> Incoming {
    let received = StripeEventReceived {
        event_id: event["id"].as_str().unwrap().to_owned(),
        event_type: event["type"].as_str().unwrap().to_owned(),
        account: event["account"].as_str().unwrap_or_default().to_owned(),
        created: event["created"].as_i64().unwrap(),
        livemode: false,
        api_version: "2025-03-31.basil".into(),
        payload: serde_json::to_vec(event).unwrap(),
        received_at_ms: 0,
        endpoint: "platform".into(),
    };
    Incoming {
        exchange: "stripe.events".into(),
        routing_key: received.event_type.clone(),
        message_id: received.event_id.clone(),
        message_type: "billing.v1.StripeEventReceived".into(),
        content_type: "application/x-protobuf".into(),
        tenant_id: Some(TENANT.into()),
        traceparent: None,
        delivery_count: 0,
        redelivered: false,
        headers: Vec::new(),
        payload: received.encode_to_vec(),
    }
}

/// Subscriptions (status, cancel_at_period_end, quantity) and invoices (status,
/// amount_remaining, attempt_count) as the fake has them now.
async fn fake_state(
    s: &Setup,
) -> (
    BTreeMap<String, (String, bool)>,
    BTreeMap<String, (String, i64, i32)>,
) {
    let subs = s
        .list("subscriptions?status=all")
        .await
        .into_iter()
        .map(|o| {
            (
                o["id"].as_str().unwrap().to_owned(),
                (
                    o["status"].as_str().unwrap().to_owned(),
                    o["cancel_at_period_end"].as_bool().unwrap(),
                ),
            )
        })
        .collect();
    let invoices = s
        .list("invoices")
        .await
        .into_iter()
        .map(|o| {
            (
                o["id"].as_str().unwrap().to_owned(),
                (
                    o["status"].as_str().unwrap_or_default().to_owned(),
                    o["amount_remaining"].as_i64().unwrap(),
                    o["attempt_count"].as_i64().unwrap() as i32,
                ),
            )
        })
        .collect();
    (subs, invoices)
}

async fn db_state(
    s: &Setup,
) -> (
    BTreeMap<String, (String, bool)>,
    BTreeMap<String, (String, i64, i32)>,
) {
    let mut conn = s.pool.get().await.unwrap();
    let subs: Vec<(String, String, bool)> = schema::stripe_subscriptions::table
        .select((
            schema::stripe_subscriptions::stripe_subscription_id,
            schema::stripe_subscriptions::status,
            schema::stripe_subscriptions::cancel_at_period_end,
        ))
        .load(&mut conn)
        .await
        .unwrap();
    let invoices: Vec<(String, Option<String>, i64, i32)> = schema::stripe_invoices::table
        .select((
            schema::stripe_invoices::stripe_invoice_id,
            schema::stripe_invoices::status,
            schema::stripe_invoices::amount_remaining,
            schema::stripe_invoices::attempt_count,
        ))
        .load(&mut conn)
        .await
        .unwrap();
    (
        subs.into_iter().map(|(id, st, c)| (id, (st, c))).collect(),
        invoices
            .into_iter()
            .map(|(id, st, r, a)| (id, (st.unwrap_or_default(), r, a)))
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn events_delivered_three_times_shuffled_converge_to_stripe() {
    let s = setup().await;
    let connection = s.connections.get(s.connection).await.unwrap();
    backfill::run(&s.pool, &connection.api, &connection.scope, s.connection)
        .await
        .unwrap();

    // Move the fake's clock past our backfill's read time, then mutate: several mutations
    // share a second (ties among events), others are seconds apart.
    s.admin("trigger/advance_time", json!({"seconds": 30}))
        .await;
    let customers: Vec<&str> = s
        .truth
        .customers
        .iter()
        .filter(|c| c.subscriptions.iter().any(|sub| sub.status == "active"))
        .map(|c| c.customer.as_str())
        .take(6)
        .collect();
    assert!(customers.len() >= 4, "the seed has active subscriptions");
    s.admin("trigger/fail_payment", json!({"customer": customers[0]}))
        .await;
    s.admin(
        "trigger/fail_payment",
        json!({"customer": customers[1], "decline_code": "expired_card"}),
    )
    .await;
    s.admin("trigger/request_cancel", json!({"customer": customers[2]}))
        .await;
    s.admin("trigger/advance_time", json!({"seconds": 20}))
        .await;
    s.admin("trigger/pay_invoice", json!({"customer": customers[0]}))
        .await;
    s.admin("trigger/cancel", json!({"customer": customers[3]}))
        .await;
    s.admin("trigger/advance_time", json!({"seconds": 20}))
        .await;

    let events = s.list("events").await;
    assert!(
        events.len() >= 8,
        "mutations produced events: {}",
        events.len()
    );
    let mut deliveries: Vec<Incoming> = events
        .iter()
        .flat_map(|e| [delivery(e), delivery(e), delivery(e)])
        .collect();
    deliveries.shuffle(&mut rand::rng());

    let applier = EventApplier {
        pool: s.pool.clone(),
        connections: s.connections.clone(),
        wake: Arc::new(tokio::sync::Notify::new()),
    };
    // What the backfill announced (customers, subscriptions, unpaid invoices, recent failures).
    let backfilled = outbox_rows(&s).await;
    // Eight at a time, as a consumer with prefetch does: events about one object race.
    for batch in deliveries.chunks(8) {
        let results = futures_util::future::join_all(batch.iter().map(|d| applier.handle(d))).await;
        for r in results {
            r.unwrap();
        }
    }

    assert_same(db_state(&s).await, fake_state(&s).await);

    // Each event recorded once; its facts queued once per state.
    let mut conn = s.pool.get().await.unwrap();
    let inbox: i64 = diesel::sql_query("SELECT count(*) AS n FROM billing.inbox")
        .get_result::<Count>(&mut conn)
        .await
        .unwrap()
        .n;
    // Events about objects we keep are recorded once; others (payment intents, …) are
    // acknowledged without effect.
    let kept = events
        .iter()
        .filter(|e| {
            sync_worker::events::Kind::of(e["data"]["object"]["object"].as_str().unwrap_or(""))
                .is_some()
        })
        .count();
    assert_eq!(inbox, kept as i64);
    // Three deliveries never triple the facts: at most one per event applied. Two events
    // carrying the same state share a message id (and content), so consumers dedupe them.
    let facts = outbox_rows(&s).await - backfilled;
    assert!(facts <= kept as i64, "{facts} facts for {kept} events");
    let conflicting: i64 = diesel::sql_query(
        "SELECT count(*) AS n FROM (SELECT message_id FROM billing.outbox GROUP BY message_id \
         HAVING count(DISTINCT payload) > 1) d",
    )
    .get_result::<Count>(&mut conn)
    .await
    .unwrap()
    .n;
    assert_eq!(conflicting, 0, "one message id with two contents");
    let failed: i64 = diesel::sql_query(
        "SELECT count(*) AS n FROM billing.outbox WHERE routing_key = 'payment.failed'",
    )
    .get_result::<Count>(&mut conn)
    .await
    .unwrap()
    .n;
    assert!(failed >= 2, "payment failures became facts: {failed}");
    drop(conn);
    assert_attempts_linked(&s).await;
    let mut conn = s.pool.get().await.unwrap();
    let churn: i64 = schema::subscription_changes::table
        .filter(schema::subscription_changes::movement.eq("churn"))
        .filter(schema::subscription_changes::source.ne("backfill"))
        .count()
        .get_result(&mut conn)
        .await
        .unwrap();
    assert!(churn >= 1, "the cancellation shows in the change history");
    drop(conn);
    s.fake.stop().await;
    s.env.cleanup(&[]).await;
}

/// Every attempt sits under the invoice Stripe collects it for: the invoice's `payments`
/// (its PaymentIntent) is the only link since basil, and webhooks never carry it.
async fn assert_attempts_linked(s: &Setup) {
    let mut want = BTreeMap::new();
    for invoice in s.list("invoices?expand[]=data.payments").await {
        for payment in invoice["payments"]["data"].as_array().unwrap() {
            let pi = payment["payment"]["payment_intent"].as_str().unwrap();
            want.insert(pi.to_owned(), invoice["id"].as_str().unwrap().to_owned());
        }
    }
    let mut conn = s.pool.get().await.unwrap();
    let held: Vec<(String, Option<String>, Option<String>)> = schema::payment_attempts::table
        .select((
            schema::payment_attempts::charge_id,
            schema::payment_attempts::payment_intent_id,
            schema::payment_attempts::stripe_invoice_id,
        ))
        .load(&mut conn)
        .await
        .unwrap();
    assert!(!held.is_empty());
    let wrong: Vec<String> = held
        .iter()
        .filter(|(_, pi, invoice)| pi.as_ref().and_then(|pi| want.get(pi)) != invoice.as_ref())
        .map(|(charge, pi, invoice)| format!("{charge} ({pi:?}) → {invoice:?}"))
        .collect();
    assert!(
        wrong.is_empty(),
        "attempts not under their invoice: {wrong:?}"
    );
}

type State = (
    BTreeMap<String, (String, bool)>,
    BTreeMap<String, (String, i64, i32)>,
);

/// Lists only the objects that differ, so a failure reads.
fn assert_same(db: State, fake: State) {
    let mut diffs = Vec::new();
    for (id, want) in &fake.0 {
        if db.0.get(id) != Some(want) {
            diffs.push(format!("{id}: db {:?} fake {want:?}", db.0.get(id)));
        }
    }
    for (id, want) in &fake.1 {
        if db.1.get(id) != Some(want) {
            diffs.push(format!("{id}: db {:?} fake {want:?}", db.1.get(id)));
        }
    }
    assert!(
        diffs.is_empty() && db.0.len() == fake.0.len() && db.1.len() == fake.1.len(),
        "database differs from Stripe:\n{}",
        diffs.join("\n")
    );
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_for_an_unknown_tenant_is_refused_without_effects() {
    let s = setup().await;
    let applier = EventApplier {
        pool: s.pool.clone(),
        connections: s.connections.clone(),
        wake: Arc::new(tokio::sync::Notify::new()),
    };
    let event = json!({"id": "evt_x", "type": "customer.updated", "created": 1, "account": null,
        "data": {"object": {"id": "cus_x", "object": "customer"}}});
    let mut d = delivery(&event);
    d.tenant_id = Some("someone-else".into());
    assert!(applier.handle(&d).await.is_err());
    d.tenant_id = None;
    assert!(applier.handle(&d).await.is_err());
    let mut conn = s.pool.get().await.unwrap();
    let n: i64 = schema::stripe_customers::table
        .count()
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(n, 0);
    drop(conn);
    s.fake.stop().await;
    s.env.cleanup(&[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn webhooks_lost_are_repaired_by_reconciliation() {
    let s = setup().await;
    let connection = s.connections.get(s.connection).await.unwrap();
    backfill::run(&s.pool, &connection.api, &connection.scope, s.connection)
        .await
        .unwrap();
    s.admin("trigger/advance_time", json!({"seconds": 30}))
        .await;
    let customers: Vec<&str> = s
        .truth
        .customers
        .iter()
        .filter(|c| c.subscriptions.iter().any(|sub| sub.status == "active"))
        .map(|c| c.customer.as_str())
        .take(5)
        .collect();
    s.admin("trigger/fail_payment", json!({"customer": customers[0]}))
        .await;
    s.admin("trigger/fail_payment", json!({"customer": customers[1]}))
        .await;
    s.admin("trigger/request_cancel", json!({"customer": customers[2]}))
        .await;
    s.admin("trigger/advance_time", json!({"seconds": 10}))
        .await;
    s.admin("trigger/cancel", json!({"customer": customers[3]}))
        .await;

    // Every tenth event never arrives — always including the first payment failure's.
    let events = s.list("events").await;
    let applier = EventApplier {
        pool: s.pool.clone(),
        connections: s.connections.clone(),
        wake: Arc::new(tokio::sync::Notify::new()),
    };
    let mut dropped = 0;
    for (i, e) in events.iter().enumerate() {
        let lost = i % 10 == 0 || e["type"] == "invoice.payment_failed";
        if lost {
            dropped += 1;
            continue;
        }
        applier.handle(&delivery(e)).await.unwrap();
    }
    assert!(dropped >= 2);
    let (db_subs, db_invoices) = db_state(&s).await;
    let (fake_subs, fake_invoices) = fake_state(&s).await;
    assert!(
        db_subs != fake_subs || db_invoices != fake_invoices,
        "dropping events must leave something stale, or the test proves nothing"
    );

    let report = sync_worker::reconcile::run(&s.pool, &connection)
        .await
        .unwrap();
    assert!(report.repaired >= 1, "{report:?}");
    assert_same(db_state(&s).await, fake_state(&s).await);

    // Nothing left to repair on the next run.
    let again = sync_worker::reconcile::run(&s.pool, &connection)
        .await
        .unwrap();
    assert_eq!(again.repaired, 0, "{again:?}");
    s.fake.stop().await;
    s.env.cleanup(&[]).await;
}

/// A reconciliation left `running` by a worker that died no longer blocks every later one
/// (the unique index on running runs dead-lettered each of them), and a job that arrives
/// while another worker reconciles the connection is covered by that run, not failed.
#[tokio::test(flavor = "multi_thread")]
async fn reconciliation_takes_over_a_dead_workers_run_and_coalesces_with_a_live_one() {
    let s = setup().await;
    let connection = s.connections.get(s.connection).await.unwrap();
    backfill::run(&s.pool, &connection.api, &connection.scope, s.connection)
        .await
        .unwrap();
    let mut conn = s.pool.get().await.unwrap();
    diesel::sql_query(
        "INSERT INTO billing.sync_runs (id, tenant_id, account_id, connection_id, kind, status, stage) \
         SELECT gen_random_uuid(), tenant_id, account_id, connection_id, 'reconcile', 'running', 'events' \
         FROM billing.sync_runs WHERE connection_id = $1 LIMIT 1",
    )
    .bind::<diesel::sql_types::Uuid, _>(s.connection)
    .execute(&mut conn)
    .await
    .unwrap();

    let report = sync_worker::reconcile::run(&s.pool, &connection)
        .await
        .expect("a dead worker's run does not block reconciliation");
    assert!(!report.coalesced);
    #[derive(diesel::QueryableByName, Debug, PartialEq)]
    struct Run {
        #[diesel(sql_type = diesel::sql_types::Text)]
        status: String,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        error: Option<String>,
    }
    async fn runs(conn: &mut diesel_async::AsyncPgConnection, connection: Uuid) -> Vec<Run> {
        diesel::sql_query(
            "SELECT status, error FROM billing.sync_runs WHERE connection_id = $1 AND kind = 'reconcile' ORDER BY started_at",
        )
        .bind::<diesel::sql_types::Uuid, _>(connection)
        .load::<Run>(conn)
        .await
        .unwrap()
    }
    let after = runs(&mut conn, s.connection).await;
    assert_eq!(after.len(), 2, "{after:?}");
    assert_eq!(after[0].status, "failed");
    assert!(
        after[0]
            .error
            .as_deref()
            .unwrap_or("")
            .contains("abandoned"),
        "{after:?}"
    );
    assert_eq!(after[1].status, "succeeded");

    // Another worker holds the connection's reconcile lock: this job is covered by its run.
    diesel::sql_query("SELECT pg_advisory_lock(hashtextextended($1, 0))")
        .bind::<diesel::sql_types::Text, _>(format!("reconcile:{}", s.connection))
        .execute(&mut conn)
        .await
        .unwrap();
    let report = sync_worker::reconcile::run(&s.pool, &connection)
        .await
        .unwrap();
    assert!(report.coalesced, "{report:?}");
    assert_eq!(
        runs(&mut conn, s.connection).await.len(),
        2,
        "no run was started"
    );
    // Once that worker is gone, the next job runs again.
    diesel::sql_query("SELECT pg_advisory_unlock(hashtextextended($1, 0))")
        .bind::<diesel::sql_types::Text, _>(format!("reconcile:{}", s.connection))
        .execute(&mut conn)
        .await
        .unwrap();
    let report = sync_worker::reconcile::run(&s.pool, &connection)
        .await
        .unwrap();
    assert!(!report.coalesced);
    assert_eq!(runs(&mut conn, s.connection).await.len(), 3);
    drop(conn);
    s.fake.stop().await;
    s.env.cleanup(&[]).await;
}

/// SIGTERM during a reconciliation that waits on a slow Stripe: the job is requeued at once
/// (transient) while its run goes on in its own task, so no transaction is cut half-way,
/// and the reconcile lock does not stay behind on a pooled connection once the run ends.
#[tokio::test(flavor = "multi_thread")]
async fn shutdown_interrupts_a_long_job_and_frees_its_lock() {
    use contracts::v1::{sync_job, SyncJob};
    use platform::amqp::HandleError;
    let s = setup().await;
    let connection = s.connections.get(s.connection).await.unwrap();
    backfill::run(&s.pool, &connection.api, &connection.scope, s.connection)
        .await
        .unwrap();
    s.admin("faults", json!({"latency_ms": 10_000})).await;
    let cancel = platform::CancellationToken::new();
    let runner = sync_worker::jobs::JobRunner {
        pool: s.pool.clone(),
        connections: s.connections.clone(),
        wake: Arc::new(tokio::sync::Notify::new()),
        cancel: cancel.clone(),
    };
    let job = SyncJob {
        job_id: "job-1".into(),
        connection_id: s.connection.to_string(),
        kind: sync_job::Kind::Reconcile as i32,
        object_id: String::new(),
        requested_at_ms: 0,
    };
    let message = Incoming {
        exchange: "sync.jobs".into(),
        routing_key: "reconcile".into(),
        message_id: "job-1".into(),
        message_type: "billing.v1.SyncJob".into(),
        content_type: "application/x-protobuf".into(),
        tenant_id: Some(TENANT.into()),
        traceparent: None,
        delivery_count: 0,
        redelivered: false,
        headers: Vec::new(),
        payload: job.encode_to_vec(),
    };
    let running = tokio::spawn(async move { runner.handle(&message).await });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(!running.is_finished(), "the job waits on Stripe");
    let asked = std::time::Instant::now();
    cancel.cancel();
    let outcome = tokio::time::timeout(std::time::Duration::from_secs(5), running)
        .await
        .expect("the job stops within 5 s of shutdown")
        .unwrap();
    assert!(
        matches!(outcome, Err(HandleError::Transient(_))),
        "{outcome:?}"
    );
    assert!(asked.elapsed() < std::time::Duration::from_secs(5));
    s.admin("faults", json!({"latency_ms": 0})).await;

    #[derive(diesel::QueryableByName)]
    struct Locked {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        locked: bool,
    }
    let mut other = <diesel_async::AsyncPgConnection as diesel_async::AsyncConnection>::establish(
        &s.env.common.database.url,
    )
    .await
    .unwrap();
    let mut free = false;
    for _ in 0..300 {
        let got: Locked =
            diesel::sql_query("SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked")
                .bind::<diesel::sql_types::Text, _>(format!("reconcile:{}", s.connection))
                .get_result(&mut other)
                .await
                .unwrap();
        if got.locked {
            free = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        free,
        "the interrupted run's lock is released with its session"
    );
    drop(other);
    s.fake.stop().await;
    s.env.cleanup(&[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refetch_job_brings_one_object_up_to_date() {
    let s = setup().await;
    let connection = s.connections.get(s.connection).await.unwrap();
    backfill::run(&s.pool, &connection.api, &connection.scope, s.connection)
        .await
        .unwrap();
    let customer = s
        .truth
        .customers
        .iter()
        .find(|c| c.subscriptions.iter().any(|sub| sub.status == "active"))
        .unwrap();
    // No webhook reaches us: only the refetch can tell.
    let failed = s
        .admin(
            "trigger/fail_payment",
            json!({"customer": customer.customer}),
        )
        .await;
    let invoice = failed["invoice"].as_str().unwrap();
    let outcome = sync_worker::events::refetch_object(&s.pool, &connection, invoice, "job-1")
        .await
        .unwrap();
    // "refetched" when it lands within the doubt window of the backfill's read.
    assert!(matches!(outcome, "applied" | "refetched"), "{outcome}");
    let mut conn = s.pool.get().await.unwrap();
    let attempts: i32 = schema::stripe_invoices::table
        .filter(schema::stripe_invoices::stripe_invoice_id.eq(invoice))
        .select(schema::stripe_invoices::attempt_count)
        .first(&mut conn)
        .await
        .unwrap();
    assert_eq!(attempts, 1);
    // The same job delivered again changes nothing.
    let again = sync_worker::events::refetch_object(&s.pool, &connection, invoice, "job-1")
        .await
        .unwrap();
    assert_eq!(again, "duplicate");
    let unknown =
        sync_worker::events::refetch_object(&s.pool, &connection, "SUMMER25", "job-2").await;
    assert!(unknown.is_err());
    drop(conn);
    s.fake.stop().await;
    s.env.cleanup(&[]).await;
}

async fn outbox_rows(s: &Setup) -> i64 {
    let mut conn = s.pool.get().await.unwrap();
    diesel::sql_query("SELECT count(*) AS n FROM billing.outbox")
        .get_result::<Count>(&mut conn)
        .await
        .unwrap()
        .n
}
