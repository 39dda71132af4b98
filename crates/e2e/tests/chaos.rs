//! `make chaos`: correctness of the whole pipeline under faults.
//!
//! Seeds a book of `CHAOS_CUSTOMERS` (1,000) customers in the Stripe fake, connects it,
//! backfills, links CSCX's accounts, then drives `CHAOS_MUTATIONS` (10,000) changes through
//! the fake — failed and recovered payments, up/downgrades, cancellations requested and
//! withdrawn, churn, expired cards, disputes opened and closed, customer edits — while:
//!
//! - webhooks are duplicated (a tenth of them, three deliveries each) and shuffled, and 5%
//!   are never delivered (only reconciliation can repair those);
//! - the fake answers 5% of API calls 500/503 and throttles at `CHAOS_STRIPE_RPS` (25/s,
//!   below the worker's own budget) with 429s;
//! - at random moments RabbitMQ and Postgres are restarted, and ingress, the sync worker,
//!   the matcher and the risk engine are each `kill -9`ed and started again.
//!
//! Then the faults stop and the test waits for the system to converge: every customer,
//! subscription, item, invoice, charge, card and dispute in `billing` equal to the fake's,
//! the open signals equal to what Stripe's state calls for, every event the fake created
//! applied, every fact consumed, every outbox empty. It prints the figures as `RESULT`
//! lines and fails when anything was lost, duplicated or never converged.
//!
//! Not part of `make test`: it takes minutes and restarts the machine's Postgres and
//! RabbitMQ under every other user. Knobs: `CHAOS_CUSTOMERS`, `CHAOS_MUTATIONS`,
//! `CHAOS_RATE` (mutations/s, 40), `CHAOS_SEED`, `CHAOS_RECONCILE_S` (the worker's
//! reconciliation interval, 20), `CHAOS_CONVERGE_TIMEOUT_S` (900), `CHAOS_STRIPE_RPS` (25),
//! `CHAOS_INFRA_RESTARTS=0` (only the service kills, for a machine others are using).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use contracts::{v1, Contract as _};
use diesel_async::RunQueryDsl as _;
use e2e::{compare, held, infra, stripe_truth, workspace_binary};
use platform::amqp::{Broker, Outgoing, Publisher};
use platform::crypto::Sealer;
use platform::db;
use platform::testing::{free_port, ServiceProcess, TestEnv};
use prost::Message as _;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde_json::json;
use stripe_fake::webhook::DeliveryFaults;
use stripe_fake::{FakeConfig, FakeServer, SeedOptions, Truth, WebhookConfig};
use tokio::sync::Mutex;

const TENANT: &str = "tenant-chaos";
const WEBHOOK_SECRET: &str = "whsec_chaos_only";
const CSM: &str = "csm-chaos";

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A service the chaos kills and starts again, always on the same port (the fake keeps
/// sending webhooks to ingress' address).
struct Service {
    name: &'static str,
    section: &'static str,
    port: u16,
    env: Vec<(String, String)>,
    process: Option<ServiceProcess>,
}

impl Service {
    fn new(name: &'static str, section: &'static str, env: Vec<(String, String)>) -> Self {
        Service {
            name,
            section,
            port: free_port(),
            env,
            process: None,
        }
    }

    fn start(&mut self, test: &TestEnv) {
        let listen = format!("BILLING__{}__LISTEN", self.section.to_uppercase());
        let address = format!("127.0.0.1:{}", self.port);
        let mut env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        env.push((&listen, &address));
        self.process = Some(ServiceProcess::spawn(
            &workspace_binary(self.name),
            self.section,
            test,
            &env,
        ));
    }

    async fn ready(&self) {
        let http = reqwest::Client::new();
        let url = format!("http://127.0.0.1:{}/readyz", self.port);
        let started = Instant::now();
        loop {
            if http
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "{} never became ready",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn kill9(&mut self) {
        if let Some(p) = self.process.take() {
            p.kill_hard();
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    RestartRabbitmq,
    RestartPostgres,
    Kill(usize),
}

/// One figure of the comparison at a moment.
struct Check {
    objects: usize,
    /// Stripe's objects per kind and the expected open signals per kind, for the report.
    stripe_counts: BTreeMap<String, usize>,
    mismatches: Vec<compare::Mismatch>,
    signals_missing: Vec<compare::OpenSignal>,
    signals_extra: Vec<compare::OpenSignal>,
    lost: held::Lost,
    duplicates: (i64, i64),
}

impl Check {
    fn converged(&self) -> bool {
        self.mismatches.is_empty()
            && self.signals_missing.is_empty()
            && self.signals_extra.is_empty()
            && self.lost.total() == 0
            && self.lost.unpublished == 0
    }

    fn mismatch_count(&self) -> usize {
        self.mismatches.len() + self.signals_missing.len() + self.signals_extra.len()
    }
}

async fn check(
    fake: &FakeServer,
    pool: &db::PgPool,
    platform_account: &str,
    since: i64,
) -> Result<Check, String> {
    let (stripe, expected, events) = {
        let state = fake.state();
        let state = state.read();
        let book = &state.books[platform_account];
        (
            stripe_truth::snapshot(book),
            stripe_truth::expected_open_signals(book),
            stripe_truth::events_since(book, since),
        )
    };
    let mut conn = pool.get().await.map_err(|e| e.to_string())?;
    let ours = held::snapshot(&mut conn, TENANT, platform_account)
        .await
        .map_err(|e| e.to_string())?;
    let open = held::open_signals(&mut conn, TENANT, &stripe_truth::STATE_SIGNAL_KINDS)
        .await
        .map_err(|e| e.to_string())?;
    let lost = held::lost(&mut conn, TENANT, &events)
        .await
        .map_err(|e| e.to_string())?;
    let duplicates = held::duplicates(&mut conn, TENANT)
        .await
        .map_err(|e| e.to_string())?;
    let (signals_missing, signals_extra) = compare::signal_diff(&expected, &open);
    let mut stripe_counts: BTreeMap<String, usize> = stripe
        .counts()
        .into_iter()
        .map(|(k, n)| (k.to_owned(), n))
        .collect();
    for (kind, _) in &expected {
        *stripe_counts.entry(format!("open {kind}")).or_default() += 1;
    }
    Ok(Check {
        objects: stripe.len() + expected.len(),
        stripe_counts,
        mismatches: compare::diff(&stripe, &ours),
        signals_missing,
        signals_extra,
        lost,
        duplicates,
    })
}

/// One change at "Stripe", picked at random; `Ok(false)` when Stripe refused it (no open
/// invoice to pay, a canceled subscription, ...): refused changes are not counted.
async fn mutate(
    rng: &mut StdRng,
    fake: &FakeServer,
    http: &reqwest::Client,
    platform_account: &str,
    subscriptions: &[String],
    customers: &[String],
    accounts: &[String],
) -> Result<bool, String> {
    let sub = subscriptions[rng.random_range(0..subscriptions.len())].clone();
    let customer = customers[rng.random_range(0..customers.len())].clone();
    let roll = rng.random_range(0..100);
    let (kind, args) = match roll {
        0..28 => {
            const DECLINES: [&str; 4] = [
                "insufficient_funds",
                "card_declined",
                "do_not_honor",
                "expired_card",
            ];
            let decline = DECLINES[rng.random_range(0..DECLINES.len())];
            (
                "fail_payment",
                json!({"subscription": sub, "decline_code": decline}),
            )
        }
        28..50 => ("pay_invoice", json!({"subscription": sub})),
        50..66 => (
            "update_subscription",
            json!({"subscription": sub, "quantity": rng.random_range(1..=25)}),
        ),
        66..73 => ("request_cancel", json!({"subscription": sub})),
        73..78 => ("request_cancel", json!({"subscription": sub, "undo": true})),
        78..80 => ("cancel", json!({"subscription": sub})),
        80..85 => ("expire_card", json!({"customer": customer})),
        85..89 => ("dispute", json!({"customer": customer})),
        89..94 => {
            let open = {
                let state = fake.state();
                let state = state.read();
                let book = &state.books[platform_account];
                let open: Vec<String> = book
                    .disputes
                    .values()
                    .filter(|d| matches!(d.status, "needs_response" | "warning_needs_response"))
                    .map(|d| d.id.clone())
                    .collect();
                open
            };
            if open.is_empty() {
                return Ok(false);
            }
            let dispute = open[rng.random_range(0..open.len())].clone();
            let outcome = if rng.random_bool(0.5) { "won" } else { "lost" };
            (
                "close_dispute",
                json!({"dispute": dispute, "outcome": outcome}),
            )
        }
        _ => {
            // Finance edits the customer in the dashboard: a new name, sometimes a new
            // CSCX account in its metadata (the matcher relinks it).
            let mut form = vec![(
                "name".to_owned(),
                format!("Renamed {}", rng.random::<u32>()),
            )];
            if rng.random_bool(0.3) {
                let account = &accounts[rng.random_range(0..accounts.len())];
                form.push(("metadata[cscx_account_id]".into(), account.clone()));
            }
            return update_customer(fake, http, &customer, &form).await;
        }
    };
    match stripe_fake::admin::trigger(&fake.app(), kind, &args) {
        Ok(_) => Ok(true),
        Err(e) if e.status < 500 => Ok(false),
        Err(e) => Err(format!("{kind}: {}", e.status)),
    }
}

/// `POST /v1/customers/:id` through the API, like any Stripe client: it meets the same
/// 500s and 429s as the worker, and retries.
async fn update_customer(
    fake: &FakeServer,
    http: &reqwest::Client,
    customer: &str,
    form: &[(String, String)],
) -> Result<bool, String> {
    for _ in 0..20 {
        let response = http
            .post(format!("{}v1/customers/{customer}", fake.base_url()))
            .bearer_auth("sk_test_fake")
            .form(form)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        match response.status().as_u16() {
            200 => return Ok(true),
            429 | 500 | 503 => tokio::time::sleep(Duration::from_millis(200)).await,
            other => return Err(format!("customer update answered {other}")),
        }
    }
    Err("customer update kept failing".into())
}

async fn publish(broker: &Arc<Broker>, messages: Vec<Outgoing>) {
    let publisher = Publisher::new(broker.clone());
    for m in messages {
        publisher.publish(&m).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "minutes long, and restarts the machine's Postgres and RabbitMQ: run with `make chaos`"]
async fn the_pipeline_converges_to_stripe_through_every_fault() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let customers = knob("CHAOS_CUSTOMERS", 1_000) as usize;
    let mutations = knob("CHAOS_MUTATIONS", 10_000);
    let rate = knob("CHAOS_RATE", 40).max(1);
    let seed = knob("CHAOS_SEED", 1);
    let reconcile_s = knob("CHAOS_RECONCILE_S", 20);
    let converge_timeout = Duration::from_secs(knob("CHAOS_CONVERGE_TIMEOUT_S", 900));
    let stripe_rps = knob("CHAOS_STRIPE_RPS", 25);
    let mut rng = StdRng::seed_from_u64(seed);

    let env = TestEnv::new();
    let url = env.common.database.url.clone();
    db::ensure_database(&url).await.unwrap();
    db::migrate(&url, "integration", query_api::MIGRATIONS)
        .await
        .unwrap();
    let pool = db::pool(&env.common.database).unwrap();

    // Ingress' address first: the fake sends its webhooks there.
    let master = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
    let keys = format!("k1:{master}");
    let mut ingress = Service::new(
        "ingress",
        "ingress",
        vec![
            ("STRIPE_WEBHOOK_SECRET".into(), WEBHOOK_SECRET.into()),
            ("BILLING__INGRESS__DEFAULT_TENANT".into(), TENANT.into()),
        ],
    );
    let now = chrono::Utc::now().timestamp();
    let fake = FakeServer::start(FakeConfig {
        rate_limit: 0,
        now: Some(now),
        realtime_clock: true,
        seed: Some(SeedOptions {
            customers,
            seed: 31,
            now: Some(now),
            ..Default::default()
        }),
        webhooks: WebhookConfig {
            url: Some(format!(
                "http://127.0.0.1:{}/api/integrations/stripe/webhook",
                ingress.port
            )),
            secret: WEBHOOK_SECRET.into(),
            // Stripe delivers concurrently; one sender at a time would make the fake, not
            // the pipeline, the bottleneck of the convergence.
            concurrency: 8,
            seed,
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .unwrap();
    let truth: Truth = serde_json::from_value(fake.truth().unwrap()).unwrap();
    let platform_account = truth.platform_account.clone();
    let stripe = fake.base_url();

    // The tenant's connection, sealed as query-api stores it.
    let sealer = Sealer::new(&[("k1".into(), master.clone())]).unwrap();
    let connection = {
        let mut conn = pool.get().await.unwrap();
        query_api::testing::store_restricted_key_connection(
            &mut conn,
            &sealer,
            TENANT,
            &platform_account,
        )
        .await
        .unwrap()
    };

    let common: Vec<(String, String)> = vec![
        ("BILLING_MASTER_KEYS".into(), keys.clone()),
        ("STRIPE_API_BASE".into(), stripe.clone()),
        (
            "BILLING__SYNC_WORKER__REQUESTS_PER_SECOND".into(),
            (stripe_rps * 2).to_string(),
        ),
        (
            "BILLING__SYNC_WORKER__RECONCILE_INTERVAL_SECS".into(),
            reconcile_s.to_string(),
        ),
    ];
    ingress.start(&env);
    let mut services = vec![ingress];
    for (name, section) in [
        ("sync-worker", "sync_worker"),
        ("matcher", "matcher"),
        ("risk-engine", "risk_engine"),
    ] {
        let mut service = Service::new(name, section, common.clone());
        service.start(&env);
        services.push(service);
    }
    for service in &services {
        service.ready().await;
    }

    // Backfill, CSCX's accounts, and a CSM who wants every alert.
    let broker = Broker::new(
        env.common.amqp.clone(),
        risk_engine::spec()
            .topology
            .exchange(contracts::exchanges::SYNC_JOBS)
            .exchange(contracts::exchanges::CSCX_ACCOUNTS),
    );
    broker.connection().await.unwrap();
    let job = v1::SyncJob {
        job_id: uuid::Uuid::new_v4().to_string(),
        connection_id: connection.to_string(),
        kind: v1::sync_job::Kind::Backfill as i32,
        object_id: String::new(),
        requested_at_ms: 0,
    };
    let mut setup = vec![Outgoing::protobuf(
        v1::SyncJob::EXCHANGE,
        job.routing_key(),
        job.job_id.clone(),
        v1::SyncJob::TYPE,
        TENANT,
        job.encode_to_vec(),
    )];
    for (message_id, account) in e2e::cscx_accounts(&truth, CSM, now * 1000) {
        setup.push(Outgoing::protobuf(
            v1::CscxAccountUpserted::EXCHANGE,
            account.routing_key(),
            message_id,
            v1::CscxAccountUpserted::TYPE,
            TENANT,
            account.encode_to_vec(),
        ));
    }
    let rule = v1::AlertRuleRequested {
        request_id: "chaos-rule".into(),
        rule_id: "chaos-all".into(),
        csm_user_id: CSM.into(),
        min_severity: "low".into(),
        scope: "tenant".into(),
        delivery: "immediate".into(),
        actor: CSM.into(),
        requested_at_ms: now * 1000,
        ..Default::default()
    };
    setup.push(Outgoing::protobuf(
        v1::AlertRuleRequested::EXCHANGE,
        rule.routing_key(),
        rule.request_id.clone(),
        v1::AlertRuleRequested::TYPE,
        TENANT,
        rule.encode_to_vec(),
    ));
    publish(&broker, setup).await;
    let started = Instant::now();
    loop {
        let done: i64 = {
            let mut conn = pool.get().await.unwrap();
            diesel::sql_query(
                "SELECT count(*) AS n FROM billing.sync_runs WHERE kind = 'backfill' AND status = 'succeeded'",
            )
            .get_result::<Count>(&mut conn)
            .await
            .map_or(0, |c| c.n)
        };
        if done > 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "the backfill did not finish"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!(
        "backfill of {customers} customers: {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // The chaos.
    let (subscriptions, customer_ids) = {
        let state = fake.state();
        let state = state.read();
        let book = &state.books[&platform_account];
        (
            book.subscriptions
                .values()
                .filter(|s| s.status != "canceled")
                .map(|s| s.id.clone())
                .collect::<Vec<_>>(),
            book.customers
                .values()
                .map(|c| c.id.clone())
                .collect::<Vec<_>>(),
        )
    };
    let accounts: Vec<String> = truth
        .companies
        .iter()
        .map(|c| c.company_id.clone())
        .collect();
    let since = fake.state().write().now();
    let app = fake.app();
    app.faults.set_rate(0.05);
    app.limiter.set_rate(stripe_rps as u32);
    app.webhooks.set_faults(DeliveryFaults {
        drop_rate: 0.05,
        duplicate_rate: 0.1,
        duplicate_copies: 3,
        shuffle: true,
    });
    let phase = Duration::from_secs_f64(mutations as f64 / rate as f64);
    let infra_faults = if knob("CHAOS_INFRA_RESTARTS", 1) == 0 {
        vec![]
    } else {
        vec![Fault::RestartRabbitmq, Fault::RestartPostgres]
    };
    let mut faults: Vec<(Duration, Fault)> = infra_faults
        .into_iter()
        .chain((0..services.len()).map(Fault::Kill))
        .map(|f| (phase.mul_f64(rng.random_range(0.1..0.9)), f))
        .collect();
    faults.sort_by_key(|(at, _)| *at);
    let services = Arc::new(Mutex::new(services));
    let chaos_started = Instant::now();
    let injector = {
        let services = services.clone();
        let env_common = env.common.clone();
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
        tokio::spawn(async move {
            let test = TestEnv {
                id: String::new(),
                database: String::new(),
                common: env_common,
            };
            for (at, fault) in faults {
                tokio::time::sleep(at.saturating_sub(chaos_started.elapsed())).await;
                let t = chaos_started.elapsed().as_secs_f64();
                match fault {
                    Fault::RestartRabbitmq => {
                        let took = tokio::task::spawn_blocking(infra::restart_rabbitmq)
                            .await
                            .unwrap()
                            .expect("RabbitMQ restarts");
                        println!(
                            "[{t:6.1} s] RabbitMQ restarted ({:.1} s)",
                            took.as_secs_f64()
                        );
                    }
                    Fault::RestartPostgres => {
                        let took = tokio::task::spawn_blocking(infra::restart_postgres)
                            .await
                            .unwrap()
                            .expect("Postgres restarts");
                        println!(
                            "[{t:6.1} s] Postgres restarted ({:.1} s)",
                            took.as_secs_f64()
                        );
                    }
                    Fault::Kill(i) => {
                        let down = Duration::from_millis(rng.random_range(500..3000));
                        let mut all = services.lock().await;
                        let service = &mut all[i];
                        service.kill9();
                        tokio::time::sleep(down).await;
                        service.start(&test);
                        service.ready().await;
                        println!(
                            "[{t:6.1} s] kill -9 {}; back after {:.1} s",
                            service.name,
                            chaos_started.elapsed().as_secs_f64() - t
                        );
                    }
                }
            }
        })
    };
    let http = reqwest::Client::new();
    let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    let (mut done, mut refused) = (0u64, 0u64);
    while done < mutations {
        interval.tick().await;
        match mutate(
            &mut rng,
            &fake,
            &http,
            &platform_account,
            &subscriptions,
            &customer_ids,
            &accounts,
        )
        .await
        {
            Ok(true) => done += 1,
            Ok(false) => refused += 1,
            Err(e) => panic!("the fake failed a change: {e}"),
        }
        if done > 0 && done % 1000 == 0 {
            println!(
                "[{:6.1} s] {done} changes at Stripe ({refused} refused)",
                chaos_started.elapsed().as_secs_f64()
            );
        }
    }
    injector.await.expect("every fault was injected");
    app.faults.set_rate(0.0);
    app.limiter.set_rate(100);
    app.webhooks
        .set_faults(DeliveryFaults::of(&WebhookConfig::default()));
    let last_fault = Instant::now();
    let chaos_s = chaos_started.elapsed().as_secs_f64();
    let webhooks = fake.webhook_stats();
    println!(
        "chaos: {done} changes in {chaos_s:.0} s ({refused} refused by Stripe); webhooks: {} queued, {} dropped, {} duplicated ×3, {} delivered",
        webhooks.queued, webhooks.dropped, webhooks.duplicated, webhooks.delivered
    );

    // Convergence.
    let mut last: Option<Check> = None;
    let converged_after = loop {
        match check(&fake, &pool, &platform_account, since).await {
            Ok(now) => {
                let ok = now.converged();
                let mismatches = now.mismatch_count();
                let lost = now.lost.total();
                let pending = now.lost.unpublished;
                last = Some(now);
                if ok {
                    break Some(last_fault.elapsed());
                }
                println!(
                    "[+{:5.0} s] converging: {mismatches} mismatches, {lost} not applied/consumed, {pending} in outboxes",
                    last_fault.elapsed().as_secs_f64()
                );
            }
            Err(e) => println!("comparison failed ({e}); retrying"),
        }
        if last_fault.elapsed() > converge_timeout {
            break None;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    };
    let last = last.expect("at least one comparison ran");

    // Report.
    let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
    for m in &last.mismatches {
        let kind = match m {
            compare::Mismatch::Missing { kind, .. }
            | compare::Mismatch::Unexpected { kind, .. }
            | compare::Mismatch::Differs { kind, .. } => *kind,
        };
        *by_kind.entry(kind.to_owned()).or_default() += 1;
    }
    println!(
        "objects compared: {} ({:?})",
        last.objects, last.stripe_counts
    );
    for m in last.mismatches.iter().take(20) {
        println!("  mismatch: {m}");
    }
    for (kind, cause) in last.signals_missing.iter().take(10) {
        println!("  signal missing: {kind} {cause}");
    }
    for (kind, cause) in last.signals_extra.iter().take(10) {
        println!("  signal open without cause: {kind} {cause}");
    }
    for id in last.lost.stripe_events.iter().take(10) {
        println!("  event never applied: {id}");
    }
    println!(
        "mismatches by kind: {by_kind:?}; signals missing {}, extra {}; events never applied {}, facts never consumed (risk {}, matcher {}); duplicate signals {}, duplicate alerts {}",
        last.signals_missing.len(),
        last.signals_extra.len(),
        last.lost.stripe_events.len(),
        last.lost.facts_risk,
        last.lost.facts_matcher,
        last.duplicates.0,
        last.duplicates.1
    );
    // Dead-lettered messages are kept, not lost (`billingctl dlq replay`), but under
    // faults alone — no poison message was sent — there must be none.
    let dead: Vec<(String, u64)> = infra::queue_depths(&env.common.amqp.namespace)
        .unwrap_or_default()
        .into_iter()
        .filter(|(name, n)| name.ends_with(".dlq") && *n > 0)
        .collect();
    let dead_lettered: u64 = dead.iter().map(|(_, n)| n).sum();
    println!("dead-lettered: {dead_lettered} {dead:?}");
    let converge_s = converged_after.map_or(converge_timeout.as_secs_f64(), |d| d.as_secs_f64());
    println!("RESULT chaos_objects_compared {}", last.objects);
    println!("RESULT chaos_mismatches {}", last.mismatch_count());
    println!("RESULT chaos_lost_events {}", last.lost.total());
    println!(
        "RESULT chaos_duplicate_alerts {}",
        last.duplicates.0 + last.duplicates.1
    );
    println!("RESULT chaos_converge_s {converge_s:.1}");
    println!("RESULT chaos_dead_lettered {dead_lettered}");

    let mut services = Arc::try_unwrap(services)
        .ok()
        .expect("the injector is done")
        .into_inner();
    for service in &mut services {
        if let Some(p) = service.process.take() {
            let _ = p.terminate();
        }
    }
    fake.stop().await;
    env.cleanup(&[&*broker]).await;
    assert!(
        converged_after.is_some(),
        "did not converge within {converge_timeout:?} of the last fault"
    );
    assert_eq!(last.duplicates, (0, 0), "duplicate signals or alerts");
    assert_eq!(
        dead_lettered, 0,
        "messages dead-lettered by faults alone: {dead:?}"
    );
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}
