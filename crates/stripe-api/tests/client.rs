//! The client against the Stripe fake: paging, the rate limit, retries and error kinds.

use std::time::Duration;

use secrecy::SecretString;
use stripe_api::stripe_core::customer::{ListCustomer, RetrieveCustomer};
use stripe_api::{pages::PAGE_SIZE, ApiConfig, ApiError, StripeApi};
use stripe_fake::{FakeConfig, FakeServer, SeedOptions};

async fn fake(customers: usize, tweak: impl FnOnce(&mut FakeConfig)) -> FakeServer {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = FakeConfig {
        rate_limit: 0,
        seed: Some(SeedOptions {
            customers,
            seed: 3,
            ..Default::default()
        }),
        ..Default::default()
    };
    tweak(&mut config);
    FakeServer::start(config).await.expect("fake starts")
}

fn api(fake: &FakeServer, key: &str, rate: u32) -> StripeApi {
    let mut config = ApiConfig::new(fake.base_url(), SecretString::from(key), false);
    config.requests_per_second = rate;
    config.base_backoff = Duration::from_millis(20);
    config.max_backoff = Duration::from_millis(200);
    StripeApi::new(config).expect("client builds")
}

async fn count_customers(api: &StripeApi) -> Result<usize, ApiError> {
    let mut cursor: Option<String> = None;
    let mut seen = 0;
    loop {
        let mut request = ListCustomer::new().limit(PAGE_SIZE);
        if let Some(after) = &cursor {
            request = request.starting_after(after.clone());
        }
        let page = api.page("customers.list", &request).await?;
        seen += page.items.len();
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(seen),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_walk_the_whole_list() {
    let fake = fake(250, |_| {}).await;
    let api = api(&fake, "rk_test_fake", 1000);
    assert_eq!(count_customers(&api).await.unwrap(), 250);
    // 100 + 100 + 50: three pages, no retries.
    assert_eq!(api.usage().requests, 3);
    assert_eq!(api.usage().retries, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_is_retried_until_it_passes() {
    // The fake allows 4 requests/s; we try 40/s, so most first tries get a 429.
    let fake = fake(700, |c| c.rate_limit = 4).await;
    let api = api(&fake, "rk_test_fake", 40);
    assert_eq!(count_customers(&api).await.unwrap(), 700);
    let usage = api.usage();
    assert!(usage.throttled > 0, "{usage:?}");
    assert_eq!(usage.requests, 7 + usage.retries);
}

#[tokio::test(flavor = "multi_thread")]
async fn server_errors_are_retried() {
    let fake = fake(400, |c| {
        c.error_rate = 0.4;
        c.fault_seed = 11;
    })
    .await;
    let api = api(&fake, "rk_test_fake", 1000);
    assert_eq!(count_customers(&api).await.unwrap(), 400);
    assert!(api.usage().retries > 0, "{:?}", api.usage());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_key_fails_at_once_and_says_so() {
    let fake = fake(5, |_| {}).await;
    let api = api(&fake, "rk_test_revoked", 1000);
    let err = count_customers(&api).await.unwrap_err();
    assert!(matches!(err, ApiError::Unauthorized { .. }), "{err:?}");
    assert!(!err.is_transient());
    assert_eq!(api.usage().requests, 1);
    assert!(!format!("{err}").contains("rk_test_revoked"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_object_is_not_found() {
    let fake = fake(5, |_| {}).await;
    let api = api(&fake, "rk_test_fake", 1000);
    let err = api
        .send("customers.retrieve", &RetrieveCustomer::new("cus_missing"))
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn exhausted_retries_are_transient() {
    let fake = fake(5, |c| {
        c.error_rate = 1.0;
    })
    .await;
    let mut config = ApiConfig::new(fake.base_url(), SecretString::from("rk_test_fake"), false);
    config.max_attempts = 3;
    config.base_backoff = Duration::from_millis(5);
    let api = StripeApi::new(config).unwrap();
    let err = count_customers(&api).await.unwrap_err();
    assert!(
        matches!(err, ApiError::Exhausted { attempts: 3, .. }),
        "{err:?}"
    );
    assert!(err.is_transient());
}
