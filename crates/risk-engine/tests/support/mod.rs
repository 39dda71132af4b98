//! The risk-engine binary under test: a fresh database and namespace, the engine as its own
//! process, a publisher for facts and an observer queue on everything it sends to `risk`.
// Each test binary uses its own part of it.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use contracts::{exchanges, v1, Contract};
use lapin::options::BasicGetOptions;
use platform::amqp::{Broker, Outgoing, Publisher, QueueSpec};
use platform::db;
use platform::testing::{ServiceProcess, TestEnv};
use prost::Message as _;

#[derive(Default, Debug)]
pub struct Seen {
    pub raised: Vec<v1::SignalRaised>,
    pub resolved: Vec<v1::SignalResolved>,
    pub health: Vec<v1::HealthChanged>,
    pub alerts: Vec<v1::AlertCreated>,
}

pub struct Harness {
    pub env: TestEnv,
    pub pool: db::PgPool,
    pub broker: Arc<Broker>,
    pub publisher: Publisher,
    pub engine: Option<ServiceProcess>,
    pub seen: Seen,
    /// Tenant of what [`Harness::send`] publishes.
    pub tenant: &'static str,
    observer: &'static str,
    sent: u32,
}

impl Harness {
    /// Migrates a fresh database, starts the engine and binds `observer` to its events.
    pub async fn start(tenant: &'static str, observer: &'static str) -> Self {
        let env = TestEnv::new();
        let url = env.common.database.url.clone();
        db::ensure_database(&url).await.unwrap();
        db::migrate(&url, "risk", risk_engine::MIGRATIONS)
            .await
            .unwrap();
        let pool = db::pool(&env.common.database).unwrap();
        let topology = risk_engine::spec().topology.queue(
            QueueSpec::new(observer)
                .bind(exchanges::RISK, "signal.#")
                .bind(exchanges::RISK, "health.#")
                .bind(exchanges::RISK, "alert.#"),
        );
        let broker = Broker::new(env.common.amqp.clone(), topology);
        broker.connection().await.unwrap();
        let publisher = Publisher::new(broker.clone());
        let mut engine =
            ServiceProcess::spawn(env!("CARGO_BIN_EXE_risk-engine"), "risk_engine", &env, &[]);
        engine.wait_for_status("/readyz", 200).await;
        Self {
            env,
            pool,
            broker,
            publisher,
            engine: Some(engine),
            seen: Seen::default(),
            tenant,
            observer,
            sent: 0,
        }
    }

    /// Publishes `message` twice under one id (the inbox absorbs the repeat).
    pub async fn send<M: Contract>(&mut self, message: &M) {
        self.sent += 1;
        let id = format!("m{}", self.sent);
        for _ in 0..2 {
            self.send_as(message, &id, self.tenant).await;
        }
    }

    pub async fn send_as<M: Contract>(&self, message: &M, id: &str, tenant: &str) {
        self.publisher
            .publish(&Outgoing::protobuf(
                M::EXCHANGE,
                message.routing_key(),
                id,
                M::TYPE,
                tenant,
                message.encode_to_vec(),
            ))
            .await
            .unwrap();
    }

    pub async fn drain(&mut self) {
        let conn = self.broker.connection().await.unwrap();
        let channel = conn.create_channel().await.unwrap();
        while let Some(got) = channel
            .basic_get(
                self.broker.name(self.observer).into(),
                BasicGetOptions { no_ack: true },
            )
            .await
            .unwrap()
        {
            let data = got.delivery.data.as_slice();
            match got.delivery.properties.kind().as_ref().map(|k| k.as_str()) {
                Some(v1::SignalRaised::TYPE) => self
                    .seen
                    .raised
                    .push(v1::SignalRaised::decode(data).unwrap()),
                Some(v1::SignalResolved::TYPE) => self
                    .seen
                    .resolved
                    .push(v1::SignalResolved::decode(data).unwrap()),
                Some(v1::HealthChanged::TYPE) => self
                    .seen
                    .health
                    .push(v1::HealthChanged::decode(data).unwrap()),
                Some(v1::AlertCreated::TYPE) => self
                    .seen
                    .alerts
                    .push(v1::AlertCreated::decode(data).unwrap()),
                other => panic!("unexpected message type {other:?}"),
            }
        }
    }

    /// Drains events until `check` holds; on timeout shows the engine's log.
    pub async fn wait(&mut self, what: &str, check: impl Fn(&Seen) -> bool) {
        for _ in 0..150 {
            self.drain().await;
            if check(&self.seen) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let log = self
            .engine
            .take()
            .map(|e| e.terminate_with_stderr().1)
            .unwrap_or_default();
        panic!("never {what}: {:#?}\nengine log:\n{log}", self.seen);
    }

    /// Lets the engine catch up, then drains what it published.
    pub async fn settle(&mut self) {
        tokio::time::sleep(Duration::from_millis(600)).await;
        self.drain().await;
    }
}
