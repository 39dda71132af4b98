//! How CSCX consumes the risk engine's events: a durable quorum queue of its own bound to the
//! `risk` exchange, protobuf messages of `proto/billing/v1/risk.proto`, deduplicated by the
//! `message_id` header, health kept per account at the highest `version`.
//!
//! `cargo run -p risk-engine --example consume_risk_events` (uses `AMQP_URL`, default the
//! local broker; `BILLING__AMQP__NAMESPACE` as the services use it) prints every event until
//! Ctrl-C. It binds `signal.#`, `health.#` and `alert.created.#`; a CSM-facing consumer
//! would bind `alert.created.<csm_user_id>` only.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use contracts::{exchanges, v1};
use platform::amqp::{
    run_consumer, Broker, ConsumerOptions, HandleError, Handler, Incoming, QueueSpec, Topology,
};
use platform::config::AmqpSettings;
use prost::Message as _;

const QUEUE: &str = "cscx.risk-events";

#[derive(Default)]
struct Printer {
    /// Message ids already handled (a real consumer keeps these in its database, in the
    /// transaction that applies the event).
    seen: Mutex<HashSet<String>>,
    /// Newest health version per account: older ones arriving late are ignored.
    health: Mutex<HashMap<(String, String), i64>>,
}

impl Handler for Printer {
    async fn handle(&self, message: &Incoming) -> Result<(), HandleError> {
        if !self.seen.lock().unwrap().insert(message.message_id.clone()) {
            return Ok(());
        }
        let bytes = message.payload.as_slice();
        let bad = |e: prost::DecodeError| HandleError::permanent(anyhow::anyhow!(e));
        match message.message_type.as_str() {
            "billing.v1.SignalRaised" => {
                let s = v1::SignalRaised::decode(bytes).map_err(bad)?;
                println!(
                    "{} signal {} {} on {} ({}): {}",
                    if s.escalated { "escalated" } else { "raised" },
                    s.kind,
                    s.severity,
                    s.account_id,
                    s.stripe_customer_id,
                    s.summary
                );
            }
            "billing.v1.SignalResolved" => {
                let s = v1::SignalResolved::decode(bytes).map_err(bad)?;
                println!("resolved {} on {}: {}", s.kind, s.account_id, s.reason);
            }
            "billing.v1.HealthChanged" => {
                let h = v1::HealthChanged::decode(bytes).map_err(bad)?;
                let key = (h.tenant_id.clone(), h.account_id.clone());
                let mut newest = self.health.lock().unwrap();
                if newest.get(&key).is_some_and(|v| *v >= h.version) {
                    return Ok(());
                }
                newest.insert(key, h.version);
                println!(
                    "health {} {} → {} ({}), {} component(s)",
                    h.account_id,
                    h.score_before,
                    h.score,
                    h.band,
                    h.components.len()
                );
            }
            "billing.v1.AlertCreated" => {
                let a = v1::AlertCreated::decode(bytes).map_err(bad)?;
                println!(
                    "alert for {}: {} ({})",
                    a.csm_user_id, a.summary, a.severity
                );
            }
            other => println!("(ignored {other})"),
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let settings = AmqpSettings {
        url: std::env::var("AMQP_URL")
            .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into()),
        namespace: std::env::var("BILLING__AMQP__NAMESPACE").unwrap_or_default(),
        prefetch: 32,
        delivery_limit: 5,
        handler_retries: 3,
    };
    let topology = Topology::new().queue(
        QueueSpec::new(QUEUE)
            .bind(exchanges::RISK, "signal.#")
            .bind(exchanges::RISK, "health.#")
            .bind(exchanges::RISK, "alert.created.#"),
    );
    let broker = Broker::new(settings.clone(), topology);
    let cancel = platform::shutdown::on_signal();
    println!("consuming {QUEUE} (Ctrl-C stops)");
    run_consumer(
        broker.clone(),
        ConsumerOptions::from_settings(QUEUE, &settings),
        Arc::new(Printer::default()),
        cancel,
    )
    .await;
    broker.close().await;
    Ok(())
}
