//! Disputes end to end against the real Postgres and the Stripe fake: backfilled with their
//! customer (through the charge), live `charge.dispute.*` events delivered three times in
//! shuffled order converge to Stripe's state, a stale event never overwrites a newer state,
//! a dispute whose charge we never saw is resolved by fetching the charge, reconciliation
//! repairs a lost dispute webhook, and each state change is announced as one
//! `DisputeChanged` fact.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use contracts::v1::{DisputeChanged, StripeEventReceived};
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

const TENANT: &str = "tenant-disputes";

struct Setup {
    env: TestEnv,
    pool: db::PgPool,
    fake: FakeServer,
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
            customers: 30,
            seed: 23,
            now: Some(now),
            ..Default::default()
        }),
        ..Default::default()
    })
    .await
    .unwrap();
    let truth: Truth = serde_json::from_value(fake.truth().unwrap()).unwrap();
    let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let sealer = Sealer::new(&[("k1".into(), key)]).unwrap();
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

    /// Paid charges with a customer, one per customer: (charge, customer).
    /// Opens a dispute on `charge` at the fake; its id.
    async fn open_dispute(&self, charge: &str) -> String {
        self.admin("trigger/dispute", json!({"charge": charge}))
            .await["dispute"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn paid_charges(&self, n: usize) -> Vec<(String, String)> {
        let mut seen = std::collections::BTreeSet::new();
        let paid: Vec<(String, String)> = self
            .list("charges")
            .await
            .into_iter()
            .filter(|c| c["status"] == "succeeded" && c["disputed"] == false)
            .filter_map(|c| {
                Some((
                    c["id"].as_str()?.to_owned(),
                    c["customer"].as_str()?.to_owned(),
                ))
            })
            .filter(|(_, customer)| seen.insert(customer.clone()))
            .take(n)
            .collect();
        assert_eq!(paid.len(), n, "the seed has too few paid charges");
        paid
    }

    fn applier(&self) -> EventApplier {
        EventApplier {
            pool: self.pool.clone(),
            connections: self.connections.clone(),
            wake: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// `dispute → (status, customer, charge, amount, reason)` in `billing.disputes`.
    async fn held(&self) -> BTreeMap<String, DisputeState> {
        let mut conn = self.pool.get().await.unwrap();
        use schema::disputes as t;
        let rows: Vec<(String, String, Option<String>, String, i64, String)> = t::table
            .select((
                t::dispute_id,
                t::status,
                t::stripe_customer_id,
                t::charge_id,
                t::amount,
                t::reason,
            ))
            .load(&mut conn)
            .await
            .unwrap();
        rows.into_iter()
            .map(|(id, status, customer, charge, amount, reason)| {
                (id, (status, customer, charge, amount, reason))
            })
            .collect()
    }

    /// The same, as Stripe has it (the customer is the charge's).
    async fn stripe(&self) -> BTreeMap<String, DisputeState> {
        let customers: BTreeMap<String, String> = self
            .list("charges")
            .await
            .into_iter()
            .filter_map(|c| {
                Some((
                    c["id"].as_str()?.to_owned(),
                    c["customer"].as_str()?.to_owned(),
                ))
            })
            .collect();
        self.list("disputes")
            .await
            .into_iter()
            .map(|d| {
                let charge = d["charge"].as_str().unwrap().to_owned();
                (
                    d["id"].as_str().unwrap().to_owned(),
                    (
                        d["status"].as_str().unwrap().to_owned(),
                        customers.get(&charge).cloned(),
                        charge,
                        d["amount"].as_i64().unwrap(),
                        d["reason"].as_str().unwrap().to_owned(),
                    ),
                )
            })
            .collect()
    }

    /// Every `DisputeChanged` queued, oldest first, with its message id.
    async fn facts(&self) -> Vec<(String, DisputeChanged)> {
        #[derive(diesel::QueryableByName)]
        struct Fact {
            #[diesel(sql_type = diesel::sql_types::Text)]
            message_id: String,
            #[diesel(sql_type = diesel::sql_types::Text)]
            message_type: String,
            #[diesel(sql_type = diesel::sql_types::Bytea)]
            payload: Vec<u8>,
        }
        let mut conn = self.pool.get().await.unwrap();
        let facts: Vec<Fact> = diesel::sql_query(
            "SELECT message_id, message_type, payload FROM billing.outbox \
             WHERE routing_key = 'dispute.changed' ORDER BY id",
        )
        .load(&mut conn)
        .await
        .unwrap();
        facts
            .into_iter()
            .map(|f| {
                assert_eq!(f.message_type, "billing.v1.DisputeChanged");
                (f.message_id, DisputeChanged::decode(&*f.payload).unwrap())
            })
            .collect()
    }
}

type DisputeState = (String, Option<String>, String, i64, String);

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

fn dispute_events(events: &[Value]) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e["type"].as_str().unwrap().starts_with("charge.dispute."))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn disputes_backfilled_and_live_converge_and_are_announced_once_per_state() {
    let s = setup().await;
    let paid = s.paid_charges(3).await;
    // Opened before the backfill: only the backfill can know it.
    let before = s.open_dispute(&paid[0].0).await;
    let connection = s.connections.get(s.connection).await.unwrap();
    let progress = backfill::run(&s.pool, &connection.api, &connection.scope, s.connection)
        .await
        .unwrap();
    let disputes_list = progress
        .lists
        .iter()
        .find(|l| l.list == backfill::Stage::Disputes)
        .unwrap();
    assert!(
        disputes_list.done && disputes_list.objects_done == 1,
        "{disputes_list:?}"
    );
    let held = s.held().await;
    assert_eq!(held[&before].0, "needs_response");
    assert_eq!(held[&before].1.as_deref(), Some(paid[0].1.as_str()));
    let facts = s.facts().await;
    assert_eq!(facts.len(), 1, "the backfilled dispute is announced");
    assert_eq!(facts[0].1.context.as_ref().unwrap().source, "backfill");
    assert_eq!(facts[0].1.stripe_customer_id, paid[0].1);

    // Live: one lost after review, one won, and the backfilled one moved to review; with
    // time passing between the steps (and same-second ties within them).
    s.admin("trigger/advance_time", json!({"seconds": 30}))
        .await;
    let lost = s
        .admin(
            "trigger/dispute",
            json!({"charge": paid[1].0, "reason": "product_not_received"}),
        )
        .await["dispute"]
        .as_str()
        .unwrap()
        .to_owned();
    let won = s.open_dispute(&paid[2].0).await;
    s.admin("trigger/advance_time", json!({"seconds": 20}))
        .await;
    s.admin("trigger/submit_dispute_evidence", json!({"dispute": lost}))
        .await;
    s.admin(
        "trigger/submit_dispute_evidence",
        json!({"dispute": before}),
    )
    .await;
    s.admin("trigger/advance_time", json!({"seconds": 20}))
        .await;
    s.admin(
        "trigger/close_dispute",
        json!({"dispute": lost, "outcome": "lost"}),
    )
    .await;
    s.admin(
        "trigger/close_dispute",
        json!({"dispute": won, "outcome": "won"}),
    )
    .await;
    s.admin("trigger/advance_time", json!({"seconds": 20}))
        .await;

    let events = s.list("events").await;
    let disputed = dispute_events(&events);
    for kind in [
        "charge.dispute.created",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.updated",
        "charge.dispute.closed",
        "charge.dispute.funds_reinstated",
    ] {
        assert!(disputed.iter().any(|e| e["type"] == kind), "no {kind}");
    }
    let mut deliveries: Vec<Incoming> = events
        .iter()
        .flat_map(|e| [delivery(e), delivery(e), delivery(e)])
        .collect();
    deliveries.shuffle(&mut rand::rng());
    let applier = s.applier();
    for batch in deliveries.chunks(8) {
        for r in futures_util::future::join_all(batch.iter().map(|d| applier.handle(d))).await {
            r.unwrap();
        }
    }
    let held = s.held().await;
    assert_eq!(
        held,
        s.stripe().await,
        "billing.disputes differs from Stripe"
    );
    assert_eq!(held[&lost].0, "lost");
    assert_eq!(held[&won].0, "won");
    assert_eq!(held[&before].0, "under_review");
    assert_eq!(held[&lost].4, "product_not_received");

    // A stale event (the lost dispute's creation, redelivered under a new id as Stripe's
    // retries may be) must not take it back to needs_response, nor announce anything.
    let created = disputed
        .iter()
        .find(|e| {
            e["type"] == "charge.dispute.created" && e["data"]["object"]["id"] == lost.as_str()
        })
        .unwrap();
    let mut stale = created.clone();
    stale["id"] = json!("evt_stale_dispute_created");
    let facts_before = s.facts().await.len();
    applier.handle(&delivery(&stale)).await.unwrap();
    assert_eq!(
        s.held().await[&lost].0,
        "lost",
        "a stale event overwrote newer state"
    );
    assert_eq!(s.facts().await.len(), facts_before);

    // Facts: one message id never carries two contents; three deliveries never triple
    // them; the newest fact of each dispute is its final state.
    let facts = s.facts().await;
    let mut by_id: BTreeMap<&str, &DisputeChanged> = BTreeMap::new();
    for (id, fact) in &facts {
        if let Some(other) = by_id.insert(id, fact) {
            assert_eq!(other, fact, "{id} with two contents");
        }
    }
    let live: Vec<_> = facts
        .iter()
        .filter(|(_, f)| f.context.as_ref().unwrap().source != "backfill")
        .collect();
    let dispute_events_applied = disputed.len();
    assert!(
        live.len() <= dispute_events_applied,
        "{} facts for {dispute_events_applied} dispute events",
        live.len()
    );
    let mut last: BTreeMap<String, (i64, String)> = BTreeMap::new();
    for (_, f) in &facts {
        let at = f.context.as_ref().unwrap().occurred_at;
        let entry = last
            .entry(f.dispute_id.clone())
            .or_insert((at, f.status.clone()));
        if at >= entry.0 {
            *entry = (at, f.status.clone());
        }
        assert!(!f.stripe_customer_id.is_empty());
        assert!(f.created > 0 && f.amount > 0 && !f.currency.is_empty());
    }
    for (id, (status, ..)) in &held {
        assert_eq!(
            &last[id].1, status,
            "{id}: newest fact is not the final state"
        );
    }
    let lost_fact = facts
        .iter()
        .rev()
        .find(|(_, f)| f.dispute_id == lost)
        .unwrap();
    assert_eq!(lost_fact.1.charge_id, paid[1].0);
    assert_eq!(lost_fact.1.stripe_customer_id, paid[1].1);
    assert!(lost_fact.1.payment_intent_id.starts_with("pi_"));
    assert!(lost_fact.1.evidence_due_by > lost_fact.1.created);

    // The read model shows them, open or not.
    let mut conn = s.pool.get().await.unwrap();
    #[derive(diesel::QueryableByName)]
    struct Open {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        open: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        total: i64,
    }
    let view: Open = diesel::sql_query(
        "SELECT count(*) FILTER (WHERE open) AS open, count(*) AS total FROM billing.dispute_history \
         WHERE tenant_id = $1",
    )
    .bind::<diesel::sql_types::Text, _>(TENANT)
    .get_result(&mut conn)
    .await
    .unwrap();
    assert_eq!((view.open, view.total), (1, 3));
    drop(conn);
    s.fake.stop().await;
    s.env.cleanup(&[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dispute_on_a_charge_we_never_saw_fetches_the_charge_and_reconciliation_repairs_lost_webhooks(
) {
    let s = setup().await;
    let paid = s.paid_charges(1).await;
    let (charge, customer) = &paid[0];
    let dp = s.open_dispute(charge).await;
    // No backfill: the webhook names a charge we do not hold.
    let events = s.list("events").await;
    let created = dispute_events(&events)
        .into_iter()
        .find(|e| e["type"] == "charge.dispute.created")
        .unwrap();
    assert!(created["data"]["object"].get("customer").is_none());
    assert!(created["data"]["object"]["charge"].is_string());
    s.applier().handle(&delivery(&created)).await.unwrap();
    let held = s.held().await;
    assert_eq!(held[&dp].0, "needs_response");
    assert_eq!(held[&dp].1.as_deref(), Some(customer.as_str()));
    let mut conn = s.pool.get().await.unwrap();
    let attempt: Option<String> = schema::payment_attempts::table
        .filter(schema::payment_attempts::charge_id.eq(charge))
        .select(schema::payment_attempts::stripe_customer_id)
        .first(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        attempt.as_deref(),
        Some(customer.as_str()),
        "the charge is kept"
    );
    drop(conn);
    let facts = s.facts().await;
    assert_eq!(facts.len(), 1);
    assert_eq!(facts[0].1.status, "needs_response");
    assert_eq!(&facts[0].1.stripe_customer_id, customer);

    // Closed at Stripe; no webhook ever arrives. Reconciliation repairs it.
    s.admin("trigger/advance_time", json!({"seconds": 30}))
        .await;
    s.admin(
        "trigger/close_dispute",
        json!({"dispute": dp, "outcome": "lost"}),
    )
    .await;
    let connection = s.connections.get(s.connection).await.unwrap();
    let report = sync_worker::reconcile::run(&s.pool, &connection)
        .await
        .unwrap();
    assert!(report.repaired >= 1, "{report:?}");
    assert_eq!(s.held().await[&dp].0, "lost");
    let facts = s.facts().await;
    assert_eq!(facts.last().unwrap().1.status, "lost");
    let again = sync_worker::reconcile::run(&s.pool, &connection)
        .await
        .unwrap();
    assert_eq!(again.repaired, 0, "{again:?}");
    assert_eq!(
        s.facts().await.len(),
        facts.len(),
        "nothing new to announce"
    );
    s.fake.stop().await;
    s.env.cleanup(&[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reconciliation_rereads_open_disputes_it_holds() {
    let s = setup().await;
    let paid = s.paid_charges(1).await;
    let dp = s.open_dispute(&paid[0].0).await;
    let connection = s.connections.get(s.connection).await.unwrap();
    backfill::run(&s.pool, &connection.api, &connection.scope, s.connection)
        .await
        .unwrap();
    // The first reconciliation consumes the events so far; what moves afterwards without
    // an event in its window is found by re-reading the open disputes.
    sync_worker::reconcile::run(&s.pool, &connection)
        .await
        .unwrap();
    s.admin("trigger/advance_time", json!({"seconds": 30}))
        .await;
    s.admin("trigger/submit_dispute_evidence", json!({"dispute": dp}))
        .await;
    // Its event is out of the next run's window: as if Stripe's Events API had lost it.
    let mut conn = s.pool.get().await.unwrap();
    diesel::sql_query("UPDATE billing.sync_runs SET cursor = $1 WHERE kind = 'reconcile'")
        .bind::<diesel::sql_types::Text, _>((chrono::Utc::now().timestamp() + 3600).to_string())
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);
    let report = sync_worker::reconcile::run(&s.pool, &connection)
        .await
        .unwrap();
    assert_eq!(report.events_seen, 0, "{report:?}");
    assert!(report.repaired >= 1, "{report:?}");
    assert_eq!(s.held().await[&dp].0, "under_review");
    assert_eq!(s.facts().await.last().unwrap().1.status, "under_review");
    s.fake.stop().await;
    s.env.cleanup(&[]).await;
}
