//! The fake's objects must read as async-stripe's types (generated from Stripe's OpenAPI spec):
//! serde with field paths, so a missing or mistyped field names itself.

use stripe_fake::{FakeConfig, FakeServer, SeedOptions};

#[tokio::test(flavor = "multi_thread")]
async fn every_list_of_the_fake_reads_as_async_stripe_types() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let fake = FakeServer::start(FakeConfig {
        rate_limit: 0,
        seed: Some(SeedOptions {
            customers: 60,
            seed: 7,
            ..Default::default()
        }),
        ..Default::default()
    })
    .await?;
    let http = reqwest::Client::new();
    macro_rules! check {
        ($path:expr, $ty:ty) => {{
            let v: serde_json::Value = http
                .get(format!(
                    "{}{}",
                    fake.base_url().trim_end_matches('/'),
                    $path
                ))
                .bearer_auth("sk_test_fake")
                .send()
                .await?
                .json()
                .await?;
            if v["data"].is_null() {
                println!("{} -> {v}", $path);
                panic!();
            }
            let mut bad = 0;
            for item in v["data"].as_array().unwrap() {
                if let Err(e) = serde_path_to_error::deserialize::<_, $ty>(item.clone()) {
                    if bad < 3 {
                        println!("{} {}: {e}", $path, item["id"]);
                    }
                    bad += 1;
                }
            }
            assert_eq!(bad, 0, "{}: objects async-stripe cannot read", $path);
        }};
    }
    check!(
        "/v1/customers?limit=100&expand[]=data.invoice_settings.default_payment_method",
        stripe_shared::Customer
    );
    check!(
        "/v1/subscriptions?limit=100&status=all",
        stripe_shared::Subscription
    );
    check!("/v1/invoices?limit=100", stripe_shared::Invoice);
    check!("/v1/charges?limit=100", stripe_shared::Charge);
    check!(
        "/v1/payment_intents?limit=100",
        stripe_shared::PaymentIntent
    );
    check!(
        "/v1/payment_methods?limit=100",
        stripe_shared::PaymentMethod
    );
    check!("/v1/prices?limit=100", stripe_shared::Price);
    check!("/v1/products?limit=100", stripe_shared::Product);
    // Disputes in every shape: a chargeback (funds withdrawn) under review, one won (funds
    // reinstated), one lost and an open inquiry.
    let charges: serde_json::Value = http
        .get(format!(
            "{}/v1/charges?limit=100",
            fake.base_url().trim_end_matches('/')
        ))
        .bearer_auth("sk_test_fake")
        .send()
        .await?
        .json()
        .await?;
    let paid: Vec<&str> = charges["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "succeeded")
        .filter_map(|c| c["id"].as_str())
        .take(4)
        .collect();
    assert_eq!(paid.len(), 4, "the seed has too few paid charges");
    let admin = |kind: &'static str, body: serde_json::Value| {
        let http = http.clone();
        let url = format!(
            "{}/_admin/trigger/{kind}",
            fake.base_url().trim_end_matches('/')
        );
        async move {
            let reply: serde_json::Value = http.post(url).json(&body).send().await?.json().await?;
            assert_eq!(reply["ok"], true, "{kind}: {reply}");
            anyhow::Ok(reply["dispute"].as_str().unwrap_or_default().to_owned())
        }
    };
    let reviewed = admin("dispute", serde_json::json!({"charge": paid[0]})).await?;
    admin(
        "submit_dispute_evidence",
        serde_json::json!({"dispute": reviewed}),
    )
    .await?;
    let won = admin("dispute", serde_json::json!({"charge": paid[1]})).await?;
    admin(
        "close_dispute",
        serde_json::json!({"dispute": won, "outcome": "won"}),
    )
    .await?;
    let lost = admin("dispute", serde_json::json!({"charge": paid[2]})).await?;
    admin(
        "close_dispute",
        serde_json::json!({"dispute": lost, "outcome": "lost"}),
    )
    .await?;
    admin(
        "dispute",
        serde_json::json!({"charge": paid[3], "inquiry": true}),
    )
    .await?;
    check!("/v1/events?limit=100", stripe_shared::Event);
    check!("/v1/disputes?limit=100", stripe_shared::Dispute);
    Ok(())
}
