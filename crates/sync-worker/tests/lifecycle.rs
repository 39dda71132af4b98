//! The service binary starts for real, migrates its schema, declares its topology, reports
//! ready, stops cleanly on SIGTERM, refuses bad config, and waits for Postgres when it is down.

#[tokio::test(flavor = "multi_thread")]
async fn starts_serves_health_and_stops_gracefully() {
    platform::testing::assert_service_lifecycle(
        env!("CARGO_BIN_EXE_sync-worker"),
        "sync_worker",
        &sync_worker::spec(),
        &[(
            "BILLING_MASTER_KEYS",
            "k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        )],
    )
    .await;
}
