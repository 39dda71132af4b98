//! The messaging primitives against the real RabbitMQ and Postgres: confirms, ack after
//! commit, exactly-once effects through the inbox, dead-lettering with a reason, and
//! recovery after the broker drops our connection.

use std::{
    sync::{
        atomic::{AtomicU32, Ordering},
        Arc,
    },
    time::Duration,
};

use diesel::{sql_types::Text, QueryableByName};
use diesel_async::{AsyncConnection as _, RunQueryDsl as _};
use diesel_migrations::{embed_migrations, EmbeddedMigrations};
use lapin::options::BasicGetOptions;
use platform::{
    amqp::{
        headers, run_consumer, Broker, ConsumerOptions, HandleError, Handler, Incoming, Outgoing,
        PublishError, Publisher, QueueSpec, Topology,
    },
    db::PgPool,
    testing::TestEnv,
    CancellationToken,
};

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("tests/migrations");
const SCHEMA: &str = "bustest";

struct Fixture {
    env: TestEnv,
    pool: PgPool,
    broker: Arc<Broker>,
    publisher: Publisher,
}

impl Fixture {
    async fn new() -> Self {
        let env = TestEnv::new();
        platform::db::ensure_database(&env.common.database.url)
            .await
            .unwrap();
        platform::db::migrate(&env.common.database.url, SCHEMA, MIGRATIONS)
            .await
            .unwrap();
        // Migrating twice is a no-op.
        assert!(
            platform::db::migrate(&env.common.database.url, SCHEMA, MIGRATIONS)
                .await
                .unwrap()
                .is_empty()
        );
        let pool = platform::db::pool(&env.common.database).unwrap();
        let topology = Topology::new()
            .exchange("events")
            .queue(QueueSpec::new("work").bind("events", "#"));
        let broker = Broker::new(env.common.amqp.clone(), topology);
        broker.connection().await.unwrap();
        let publisher = Publisher::new(broker.clone());
        Self {
            env,
            pool,
            broker,
            publisher,
        }
    }

    fn message(&self, id: &str, body: &str) -> Outgoing {
        let mut m = Outgoing::protobuf(
            "events",
            "thing.happened",
            id,
            "test.v1.Thing",
            "tenant-1",
            body.as_bytes().to_vec(),
        );
        m.content_type = "text/plain".into();
        m
    }

    fn options(&self) -> ConsumerOptions {
        let mut o = ConsumerOptions::from_settings("work", &self.env.common.amqp);
        o.retry_base = Duration::from_millis(10);
        o
    }

    async fn applied(&self) -> Vec<(String, String)> {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = Text)]
            message_id: String,
            #[diesel(sql_type = Text)]
            body: String,
        }
        let mut conn = self.pool.get().await.unwrap();
        let rows: Vec<Row> = diesel::sql_query(format!(
            "SELECT message_id, body FROM {SCHEMA}.applied ORDER BY body"
        ))
        .load(&mut conn)
        .await
        .unwrap();
        rows.into_iter().map(|r| (r.message_id, r.body)).collect()
    }

    async fn wait_for<F: AsyncFnMut() -> bool>(&self, mut done: F) {
        for _ in 0..300 {
            if done().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("condition not reached in 15 s");
    }

    async fn cleanup(self) {
        self.env.cleanup(&[&self.broker]).await;
    }
}

/// Applies a message by inserting a row, inside one transaction with the inbox record.
/// Bodies starting with "poison" are permanent failures; "flaky" fails transiently each time.
struct RecordingHandler {
    pool: PgPool,
    calls: AtomicU32,
}

impl Handler for RecordingHandler {
    async fn handle(&self, message: &Incoming) -> Result<(), HandleError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let body = String::from_utf8(message.payload.clone()).map_err(HandleError::permanent)?;
        if body.starts_with("poison") {
            return Err(HandleError::permanent(anyhow::anyhow!(
                "cannot parse {body}"
            )));
        }
        if body.starts_with("flaky") {
            return Err(HandleError::transient(anyhow::anyhow!("database busy")));
        }
        let mut conn = self.pool.get().await.map_err(HandleError::transient)?;
        let id = message.message_id.clone();
        conn.transaction::<_, diesel::result::Error, _>(async |conn| {
            if platform::inbox::first_delivery(conn, "bustest", "work", &id).await? {
                diesel::sql_query("INSERT INTO bustest.applied (message_id, body) VALUES ($1, $2)")
                    .bind::<Text, _>(&id)
                    .bind::<Text, _>(&body)
                    .execute(conn)
                    .await?;
            }
            Ok(())
        })
        .await
        .map_err(HandleError::transient)
    }
}

fn start(
    fx: &Fixture,
    handler: Arc<RecordingHandler>,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let cancel = CancellationToken::new();
    let task = tokio::spawn(run_consumer(
        fx.broker.clone(),
        fx.options(),
        handler,
        cancel.clone(),
    ));
    (cancel, task)
}

#[tokio::test(flavor = "multi_thread")]
async fn confirmed_messages_are_applied_once_and_acked_after_commit() {
    let fx = Fixture::new().await;
    let messages: Vec<_> = (0..50)
        .map(|i| fx.message(&format!("m-{i:02}"), &format!("body-{i:02}")))
        .collect();
    fx.publisher.publish_all(&messages).await.unwrap();
    // The same ids again (a publisher retry after a crash): must not be applied twice.
    fx.publisher.publish_all(&messages[..10]).await.unwrap();
    fx.publisher.publish(&messages[0]).await.unwrap();

    let handler = Arc::new(RecordingHandler {
        pool: fx.pool.clone(),
        calls: AtomicU32::new(0),
    });
    let (cancel, task) = start(&fx, handler.clone());
    fx.wait_for(async || AtomicU32::load(&handler.calls, Ordering::SeqCst) >= 61)
        .await;
    fx.wait_for(async || fx.broker.queue_depth("work").await.unwrap() == 0)
        .await;
    cancel.cancel();
    task.await.unwrap();

    let applied = fx.applied().await;
    assert_eq!(applied.len(), 50);
    assert_eq!(applied[7], ("m-07".to_string(), "body-07".to_string()));
    assert_eq!(fx.broker.queue_depth("work.dlq").await.unwrap(), 0);
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unroutable_publish_is_an_error() {
    let fx = Fixture::new().await;
    let mut m = fx.message("x", "y");
    m.exchange = "events".into();
    // Bound with "#", so route instead to an exchange with no queues: the dead-letter one with an unknown key.
    m.exchange = platform::amqp::DEAD_LETTER_EXCHANGE.into();
    m.routing_key = "nobody-listens".into();
    let err = fx.publisher.publish(&m).await.unwrap_err();
    assert!(matches!(err, PublishError::Unroutable { .. }), "{err}");
    // And the publisher still works afterwards.
    fx.publisher.publish(&fx.message("ok", "ok")).await.unwrap();
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn poison_and_exhausted_messages_go_to_the_dlq_with_a_reason() {
    let fx = Fixture::new().await;
    fx.publisher
        .publish_all(&[
            fx.message("p1", "poison-1"),
            fx.message("f1", "flaky-1"),
            fx.message("g1", "good-1"),
        ])
        .await
        .unwrap();
    let handler = Arc::new(RecordingHandler {
        pool: fx.pool.clone(),
        calls: AtomicU32::new(0),
    });
    let (cancel, task) = start(&fx, handler.clone());
    fx.wait_for(async || fx.broker.queue_depth("work.dlq").await.unwrap() == 2)
        .await;
    fx.wait_for(async || fx.broker.queue_depth("work").await.unwrap() == 0)
        .await;
    cancel.cancel();
    task.await.unwrap();

    // The good message was applied; the consumer went on past the poison.
    assert_eq!(
        fx.applied().await,
        vec![("g1".to_string(), "good-1".to_string())]
    );
    // The flaky message was delivered delivery_limit (3) times, each with 1 in-process retry.
    let calls = AtomicU32::load(&handler.calls, Ordering::SeqCst);
    assert!(
        calls >= 8,
        "poison once + flaky 3 deliveries × 2 tries + good once, got {calls}"
    );

    let conn = fx.broker.connection().await.unwrap();
    let channel = conn.create_channel().await.unwrap();
    let mut reasons = Vec::new();
    for _ in 0..2 {
        let got = channel
            .basic_get(
                fx.broker.name("work.dlq").into(),
                BasicGetOptions { no_ack: true },
            )
            .await
            .unwrap()
            .expect("a dead letter");
        let incoming_headers = got.delivery.properties.headers().clone().unwrap();
        let get = |k: &str| {
            incoming_headers
                .inner()
                .get(k)
                .map(|v| match v {
                    lapin::types::AMQPValue::LongString(s) => {
                        String::from_utf8_lossy(s.as_bytes()).into_owned()
                    }
                    other => format!("{other:?}"),
                })
                .unwrap_or_default()
        };
        reasons.push((
            got.delivery
                .properties
                .message_id()
                .clone()
                .unwrap()
                .to_string(),
            get(headers::DEAD_LETTER_REASON),
            get(headers::ORIGINAL_EXCHANGE),
            get(headers::TENANT_ID),
        ));
    }
    reasons.sort();
    assert_eq!(reasons[0].0, "f1");
    assert!(reasons[0].1.contains("database busy"), "{:?}", reasons[0]);
    assert_eq!(reasons[1].0, "p1");
    assert!(
        reasons[1].1.contains("cannot parse poison-1"),
        "{:?}",
        reasons[1]
    );
    assert!(reasons[1].2.contains("events"), "{:?}", reasons[1]);
    assert!(reasons[1].3.contains("tenant-1"), "{:?}", reasons[1]);
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_letters_can_be_inspected_and_replayed() {
    let fx = Fixture::new().await;
    fx.publisher
        .publish_all(&[fx.message("p2", "poison-2"), fx.message("p3", "poison-3")])
        .await
        .unwrap();
    let handler = Arc::new(RecordingHandler {
        pool: fx.pool.clone(),
        calls: AtomicU32::new(0),
    });
    let (cancel, task) = start(&fx, handler.clone());
    fx.wait_for(async || fx.broker.queue_depth("work.dlq").await.unwrap() == 2)
        .await;
    cancel.cancel();
    task.await.unwrap();

    let peeked = platform::amqp::dlq::peek(&fx.broker, "work", 10)
        .await
        .unwrap();
    assert_eq!(peeked.len(), 2);
    assert!(peeked
        .iter()
        .all(|d| d.reason.contains("cannot parse") && d.original_exchange == "events"));
    fx.wait_for(async || fx.broker.queue_depth("work.dlq").await.unwrap() == 2)
        .await;

    // After a fix ships, the operator replays; the messages go back through the work queue.
    let replayed = platform::amqp::dlq::replay(&fx.broker, "work", 10)
        .await
        .unwrap();
    assert_eq!(replayed, 2);
    assert_eq!(fx.broker.queue_depth("work.dlq").await.unwrap(), 0);
    fx.wait_for(async || fx.broker.queue_depth("work").await.unwrap() == 2)
        .await;
    fx.cleanup().await;
}

/// Closes this test's AMQP connection from the broker side, as a broker restart would.
fn drop_connection_on_broker(connection_name: &str) {
    let out = std::process::Command::new("rabbitmqctl")
        .args([
            "list_connections",
            "pid",
            "client_properties",
            "--quiet",
            "--no-table-headers",
        ])
        .output()
        .expect("rabbitmqctl");
    let listing = String::from_utf8_lossy(&out.stdout);
    let mut closed = 0;
    for line in listing.lines().filter(|l| l.contains(connection_name)) {
        let pid = line.split('\t').next().unwrap_or_default();
        let status = std::process::Command::new("rabbitmqctl")
            .args(["close_connection", pid, "test: simulated broker restart"])
            .status()
            .expect("rabbitmqctl close_connection");
        assert!(status.success());
        closed += 1;
    }
    assert!(
        closed > 0,
        "connection {connection_name} not found in:\n{listing}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn consumer_and_publisher_recover_after_the_broker_drops_the_connection() {
    let fx = Fixture::new().await;
    let handler = Arc::new(RecordingHandler {
        pool: fx.pool.clone(),
        calls: AtomicU32::new(0),
    });
    let (cancel, task) = start(&fx, handler.clone());
    let first: Vec<_> = (0..20)
        .map(|i| fx.message(&format!("a-{i:02}"), &format!("a-{i:02}")))
        .collect();
    fx.publisher.publish_all(&first).await.unwrap();
    fx.wait_for(async || fx.applied().await.len() == 20).await;

    drop_connection_on_broker(&fx.broker.connection_name());
    fx.wait_for(async || !fx.broker.is_connected()).await;

    // Publishing right after the drop may fail once; a retry reconnects.
    let second: Vec<_> = (0..20)
        .map(|i| fx.message(&format!("b-{i:02}"), &format!("b-{i:02}")))
        .collect();
    let mut published = false;
    for _ in 0..50 {
        if fx.publisher.publish_all(&second).await.is_ok() {
            published = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(published, "publisher never recovered");
    fx.wait_for(async || fx.applied().await.len() == 40).await;
    assert!(fx.broker.is_connected());
    cancel.cancel();
    task.await.unwrap();
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_finishes_in_flight_messages() {
    let fx = Fixture::new().await;
    let messages: Vec<_> = (0..30)
        .map(|i| fx.message(&format!("s-{i:02}"), &format!("s-{i:02}")))
        .collect();
    fx.publisher.publish_all(&messages).await.unwrap();
    let handler = Arc::new(RecordingHandler {
        pool: fx.pool.clone(),
        calls: AtomicU32::new(0),
    });
    let (cancel, task) = start(&fx, handler.clone());
    fx.wait_for(async || AtomicU32::load(&handler.calls, Ordering::SeqCst) >= 1)
        .await;
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(15), task)
        .await
        .expect("drained in time")
        .unwrap();
    // Whatever was handled was committed, and whatever was not is back in the queue (the
    // broker requeues unacked deliveries when the channel closes): nothing lost.
    let applied = fx.applied().await.len() as u32;
    assert!(applied >= 1);
    fx.wait_for(async || applied + fx.broker.queue_depth("work").await.unwrap() == 30)
        .await;
    assert_eq!(
        fx.applied().await.len() as u32,
        applied,
        "nothing applied after shutdown"
    );
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broker_that_never_answers_does_not_hold_up_shutdown() {
    // Accepts TCP and says nothing: lapin waits for the AMQP greeting forever.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let mut settings = TestEnv::new().common.amqp;
    settings.url = format!("amqp://guest:guest@127.0.0.1:{port}/%2f");
    let broker = Broker::new(settings, Topology::new().exchange("events"));
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.cancel();
    });
    let connected =
        tokio::time::timeout(Duration::from_secs(5), broker.connect_with_retry(&cancel))
            .await
            .expect("cancellation ends a connection attempt in progress");
    assert!(connected.is_none());
    held.abort();
}
