//! Test support shared by every crate's integration tests: a fresh database and a unique
//! RabbitMQ namespace per test, removed again by [`TestEnv::cleanup`].

use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};

use crate::config::{AmqpSettings, CommonSettings, DatabaseSettings, LogFormat, TelemetrySettings};

/// Postgres server the tests use (`TEST_DATABASE_URL`, without a database name).
pub fn test_server_url() -> String {
    std::env::var("TEST_DATABASE_SERVER").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub fn test_amqp_url() -> String {
    std::env::var("TEST_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// One test's private infrastructure.
pub struct TestEnv {
    pub id: String,
    pub database: String,
    pub common: CommonSettings,
}

impl TestEnv {
    /// A fresh database name and AMQP namespace; the database is created by the service
    /// under test (`create_if_missing`), as in dev.
    pub fn new() -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        let database = format!("billing_test_{id}");
        let common = CommonSettings {
            database: DatabaseSettings {
                url: format!("{}/{database}", test_server_url()),
                pool_size: 4,
                create_if_missing: true,
                migrate_on_start: true,
            },
            amqp: AmqpSettings {
                url: test_amqp_url(),
                namespace: format!("test-{id}."),
                prefetch: 16,
                delivery_limit: 3,
                handler_retries: 1,
            },
            telemetry: TelemetrySettings {
                log_filter: "warn".into(),
                log_format: LogFormat::Pretty,
                otlp_endpoint: String::new(),
            },
        };
        Self { id, database, common }
    }

    /// Drops the database (closing its connections) and this namespace's queues and exchanges.
    pub async fn cleanup(&self, brokers: &[&crate::amqp::Broker]) {
        for broker in brokers {
            let _ = broker.delete_topology().await;
            broker.close().await;
        }
        if let Ok(mut admin) = AsyncPgConnection::establish(&format!("{}/postgres", test_server_url())).await {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.database))
                .execute(&mut admin)
                .await;
        }
    }
}

impl Default for TestEnv {
    fn default() -> Self {
        Self::new()
    }
}
