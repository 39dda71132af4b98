//! `kill -9` of ingress in the middle of a burst: every event that was answered 2xx is in the
//! database after the crash and reaches the bus after the restart. Nothing acknowledged is lost.

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use diesel::{sql_types::Text, QueryableByName};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use futures_util::StreamExt as _;
use platform::{
    amqp::{Broker, QueueSpec, Topology},
    testing::{ServiceProcess, TestEnv},
};
use prost::Message as _;

const SECRET: &str = "whsec_crash_test";

fn body(i: usize) -> Vec<u8> {
    serde_json::json!({"id": format!("evt_crash_{i:05}"), "object": "event", "type": "invoice.paid",
        "created": chrono::Utc::now().timestamp(), "data": {"object": {"id": format!("in_{i}")}}})
    .to_string()
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_events_survive_kill_9() {
    let env = TestEnv::new();
    let observer = Broker::new(
        env.common.amqp.clone(),
        Topology::new()
            .queue(QueueSpec::new("observer").bind(contracts::exchanges::STRIPE_EVENTS, "#")),
    );
    observer.connection().await.unwrap();
    let binary = env!("CARGO_BIN_EXE_ingress");
    let mut first = ServiceProcess::spawn(
        binary,
        "ingress",
        &env,
        &[("STRIPE_WEBHOOK_SECRET", SECRET)],
    );
    first.wait_for_status("/readyz", 200).await;

    let url = first.url("/api/integrations/stripe/webhook");
    let client = reqwest::Client::new();
    let acked = Arc::new(std::sync::Mutex::new(BTreeSet::new()));
    let burst = {
        let (client, url, acked) = (client.clone(), url.clone(), acked.clone());
        tokio::spawn(async move {
            futures_util::stream::iter(0..3000usize)
                .for_each_concurrent(32, |i| {
                    let (client, url, acked) = (client.clone(), url.clone(), acked.clone());
                    async move {
                        let b = body(i);
                        let sig = domain::webhook_signature::header_value(
                            SECRET,
                            chrono::Utc::now().timestamp(),
                            &b,
                        );
                        let sent = client
                            .post(&url)
                            .header("content-type", "application/json")
                            .header("stripe-signature", sig)
                            .body(b)
                            .send()
                            .await;
                        if sent.is_ok_and(|r| r.status().is_success()) {
                            acked.lock().unwrap().insert(format!("evt_crash_{i:05}"));
                        }
                    }
                })
                .await;
        })
    };
    // Let part of the burst through, then pull the plug.
    for _ in 0..200 {
        if acked.lock().unwrap().len() >= 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    first.kill_hard();
    burst.await.unwrap();
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 200 && acked.len() < 3000,
        "the crash landed mid-burst ({} acked)",
        acked.len()
    );

    // Every acknowledged event is durable.
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = Text)]
        event_id: String,
    }
    let mut conn = AsyncPgConnection::establish(&env.common.database.url)
        .await
        .unwrap();
    let stored: BTreeSet<String> = diesel::sql_query("SELECT event_id FROM ingress.events")
        .load::<Id>(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.event_id)
        .collect();
    let missing: Vec<_> = acked.difference(&stored).collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not stored: {missing:?}"
    );

    // After a restart, everything stored reaches the bus.
    let mut second = ServiceProcess::spawn(
        binary,
        "ingress",
        &env,
        &[("STRIPE_WEBHOOK_SECRET", SECRET)],
    );
    second.wait_for_status("/readyz", 200).await;
    let conn = observer.connection().await.unwrap();
    let channel = conn.create_channel().await.unwrap();
    let mut published = BTreeSet::new();
    for _ in 0..300 {
        while let Some(got) = channel
            .basic_get(
                observer.name("observer").into(),
                lapin::options::BasicGetOptions { no_ack: true },
            )
            .await
            .unwrap()
        {
            let event = contracts::v1::StripeEventReceived::decode(&*got.delivery.data).unwrap();
            published.insert(event.event_id);
        }
        if stored.is_subset(&published) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let unpublished: Vec<_> = stored.difference(&published).collect();
    assert!(
        unpublished.is_empty(),
        "stored but never published: {} events",
        unpublished.len()
    );
    assert!(second.terminate().success());
    env.cleanup(&[&observer]).await;
}
