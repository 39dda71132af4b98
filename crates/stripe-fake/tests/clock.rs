//! The fake's clock follows real time when asked (like Stripe's), and stays still otherwise.

use stripe_fake::{FakeConfig, FakeServer};

async fn created_after_a_pause(realtime: bool) -> (i64, i64) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let start = 1_800_000_000;
    let fake = FakeServer::start(FakeConfig {
        rate_limit: 0,
        now: Some(start),
        realtime_clock: realtime,
        ..Default::default()
    })
    .await
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let created: serde_json::Value = reqwest::Client::new()
        .post(format!("{}v1/customers", fake.base_url()))
        .bearer_auth("sk_test_fake")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("email=clock%40example.com")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    fake.stop().await;
    (start, created["created"].as_i64().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_realtime_clock_moves_with_the_wall_clock() {
    let (start, created) = created_after_a_pause(true).await;
    assert!(created >= start + 2, "created {created}, start {start}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_clock_stays_put() {
    let (start, created) = created_after_a_pause(false).await;
    assert_eq!(created, start);
}
