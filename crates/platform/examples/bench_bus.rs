//! `make bench-bus`: confirmed-publish throughput and publish→consume→commit latency on the
//! real broker and database, through the same publisher and consumer loop the services use.
//!
//! Prints `RESULT bus_confirmed_publish_per_s <n>` and `RESULT bus_latency_p99_ms <n>`.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use diesel::sql_types::Text;
use diesel_async::{AsyncConnection as _, RunQueryDsl as _};
use diesel_migrations::{embed_migrations, EmbeddedMigrations};
use hdrhistogram::Histogram;
use platform::{
    amqp::{
        run_consumer, Broker, ConsumerOptions, HandleError, Handler, Incoming, Outgoing, Publisher,
        QueueSpec, Topology,
    },
    db::PgPool,
    testing::TestEnv,
    CancellationToken,
};

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("tests/migrations");
const THROUGHPUT_MESSAGES: usize = 100_000;
const BATCH: usize = 500;
const PUBLISHERS: usize = 4;
const LATENCY_RATE: u64 = 1_000;
const LATENCY_SECONDS: u64 = 10;

fn payload(seq: u64, sent_at: Instant, origin: Instant) -> Vec<u8> {
    let mut p = Vec::with_capacity(256);
    p.extend_from_slice(&seq.to_le_bytes());
    p.extend_from_slice(&(sent_at - origin).as_nanos().to_le_bytes()[..8]);
    p.resize(256, b'x'); // a realistic small event
    p
}

struct TimingHandler {
    pool: PgPool,
    origin: Instant,
    latencies: Arc<Mutex<Histogram<u64>>>,
    /// Creation → handler entry: the broker's share (publish, quorum commit, delivery).
    deliveries: Arc<Mutex<Histogram<u64>>>,
}

impl Handler for TimingHandler {
    async fn handle(&self, message: &Incoming) -> Result<(), HandleError> {
        let sent_ns = u64::from_le_bytes(
            message.payload[8..16]
                .try_into()
                .map_err(HandleError::permanent)?,
        );
        let entered_ns = (Instant::now() - self.origin).as_nanos() as u64;
        let delivery_micros = entered_ns.saturating_sub(sent_ns) / 1_000;
        self.deliveries
            .lock()
            .unwrap()
            .record(delivery_micros.max(1))
            .ok();
        let mut conn = self.pool.get().await.map_err(HandleError::transient)?;
        let id = message.message_id.clone();
        conn.transaction::<_, diesel::result::Error, _>(async |conn| {
            if platform::inbox::first_delivery(conn, "bench", "bench", &id).await? {
                diesel::sql_query("INSERT INTO bench.applied (message_id, body) VALUES ($1, 'x')")
                    .bind::<Text, _>(&id)
                    .execute(conn)
                    .await?;
            }
            Ok(())
        })
        .await
        .map_err(HandleError::transient)?;
        let now_ns = (Instant::now() - self.origin).as_nanos() as u64;
        let micros = now_ns.saturating_sub(sent_ns) / 1_000;
        self.latencies.lock().unwrap().record(micros.max(1)).ok();
        Ok(())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = TestEnv::new();
    platform::db::ensure_database(&env.common.database.url).await?;
    platform::db::migrate(&env.common.database.url, "bench", MIGRATIONS).await?;
    let mut db_settings = env.common.database.clone();
    db_settings.pool_size = 16;
    let pool = platform::db::pool(&db_settings)?;

    let mut amqp = env.common.amqp.clone();
    amqp.prefetch = 64;
    let topology = Topology::new()
        .exchange("bench")
        .queue(QueueSpec::new("throughput").bind("bench", "throughput"))
        .queue(QueueSpec::new("latency").bind("bench", "latency"));
    let broker = Broker::new(amqp.clone(), topology);
    broker.connection().await?;
    let origin = Instant::now();

    // 1. Throughput: several tasks publish batches back to back; each batch is pipelined and
    //    every message's confirm is awaited.
    let publisher = Arc::new(Publisher::new(broker.clone()));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..PUBLISHERS {
        let publisher = publisher.clone();
        tasks.push(tokio::spawn(async move {
            let per_worker = THROUGHPUT_MESSAGES / PUBLISHERS;
            let mut seq = (worker * per_worker) as u64;
            for _ in 0..per_worker / BATCH {
                let batch: Vec<Outgoing> = (0..BATCH)
                    .map(|_| {
                        seq += 1;
                        Outgoing::protobuf(
                            "bench",
                            "throughput",
                            format!("t-{seq}"),
                            "bench.v1.Tick",
                            "bench",
                            payload(seq, Instant::now(), origin),
                        )
                    })
                    .collect();
                publisher.publish_all(&batch).await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let elapsed = started.elapsed();
    let per_s = THROUGHPUT_MESSAGES as f64 / elapsed.as_secs_f64();
    println!("confirmed publishes: {THROUGHPUT_MESSAGES} in {:.2} s over {PUBLISHERS} publishers, batches of {BATCH} (quorum queue, persistent)", elapsed.as_secs_f64());

    // Empty the throughput queue so the broker is not still paging 100k messages during phase 2.
    {
        let conn = broker.connection().await?;
        let channel = conn.create_channel().await?;
        channel
            .queue_purge(broker.name("throughput").into(), Default::default())
            .await?;
        let _ = channel.close(200, "purged".into()).await;
    }

    // 2. Latency at a steady 1,000 msg/s: publish (confirmed) → consume → DB commit → ack.
    let latencies = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1, 60_000_000, 3,
    )?));
    let deliveries = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1, 60_000_000, 3,
    )?));
    let handler = Arc::new(TimingHandler {
        pool: pool.clone(),
        origin,
        latencies: latencies.clone(),
        deliveries: deliveries.clone(),
    });
    let cancel = CancellationToken::new();
    let mut options = ConsumerOptions::from_settings("latency", &amqp);
    options.concurrency = 16;
    let consumer = tokio::spawn(run_consumer(
        broker.clone(),
        options,
        handler,
        cancel.clone(),
    ));
    let total = LATENCY_RATE * LATENCY_SECONDS;
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / LATENCY_RATE));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut inflight = tokio::task::JoinSet::new();
    for seq in 0..total {
        ticker.tick().await;
        let publisher = publisher.clone();
        inflight.spawn(async move {
            let m = Outgoing::protobuf(
                "bench",
                "latency",
                format!("l-{seq}"),
                "bench.v1.Tick",
                "bench",
                payload(seq, Instant::now(), origin),
            );
            publisher.publish(&m).await
        });
        while let Some(done) = inflight.try_join_next() {
            done??;
        }
    }
    while let Some(done) = inflight.join_next().await {
        done??;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while latencies.lock().unwrap().len() < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cancel.cancel();
    consumer.await?;
    let h = latencies.lock().unwrap().clone();
    let d = deliveries.lock().unwrap().clone();
    for (what, h) in [("publish → commit", &h), ("publish → handler", &d)] {
        println!(
            "{what} at {LATENCY_RATE} msg/s for {LATENCY_SECONDS} s: n={} p50={:.2} ms p99={:.2} ms p99.9={:.2} ms max={:.2} ms",
            h.len(),
            h.value_at_quantile(0.50) as f64 / 1000.0,
            h.value_at_quantile(0.99) as f64 / 1000.0,
            h.value_at_quantile(0.999) as f64 / 1000.0,
            h.max() as f64 / 1000.0
        );
    }
    env.cleanup(&[&broker]).await;
    println!("RESULT bus_confirmed_publish_per_s {per_s:.0}");
    println!(
        "RESULT bus_latency_p99_ms {:.2}",
        h.value_at_quantile(0.99) as f64 / 1000.0
    );
    Ok(())
}
