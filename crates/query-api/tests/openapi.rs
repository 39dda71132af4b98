//! The OpenAPI document and its docs page as the running API serves them: no token needed,
//! the right content types and headers, a document that `openapi-spec-validator` (PyPI;
//! installed by `scripts/dev-deps.sh`) accepts, and a page listing the operations with
//! nothing loaded from elsewhere.

use platform::testing::TestEnv;
use serde_json::Value;

const JWT: &[u8] = b"openapi-test-secret-openapi-test-secret!";

#[tokio::test(flavor = "multi_thread")]
async fn the_document_and_its_page_are_served_without_a_token() {
    let env = TestEnv::new();
    let api = query_api::testing::InProcess::start(
        env.common.clone(),
        query_api::testing::settings(false),
        JWT,
        [7u8; 32],
    )
    .await;
    let client = reqwest::Client::new();

    let resp = client
        .get(format!("{}/api/openapi.json", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let raw = resp.text().await.unwrap();
    let doc: Value = serde_json::from_str(&raw).expect("the document is JSON");
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/stripe/invoices/{customer_id}",
        "/api/integrations/stripe/connect",
        "/ui/accounts/{customer_id}",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );

    // The document's own claim: a protected operation without a token is the documented 401.
    let (status, body) = api
        .call(reqwest::Method::GET, "/api/stripe/mrr/acc-acme", None, None)
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "unauthenticated");
    assert!(doc["paths"]["/api/stripe/mrr/{customer_id}"]["get"]["responses"]["401"].is_object());

    validate(&raw);

    let page = client
        .get(format!("{}/api/docs", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.starts_with("default-src 'none'; style-src 'self';"),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    for expected in [
        "/api/stripe/customer/{customer_id}",
        "/api/matching/customers/{stripe_customer_id}/decision",
        "/api/alerts/webhook",
        "Account invoices",
        "starting_after",
        "href=\"/api/docs.css\"",
    ] {
        assert!(html.contains(expected), "{expected} is not on the page");
    }
    assert!(!html.contains("<script"), "the page has a script");
    // Nothing from elsewhere: links go to this page or this API, nothing else is loaded.
    assert!(!html.contains(" src="), "the page loads something");
    for link in html.split("href=\"").skip(1) {
        assert!(
            ["#", "/", "data:,\""].iter().any(|ok| link.starts_with(ok)),
            "a link leaves the API: {}",
            &link[..link.len().min(60)]
        );
    }

    let css = client
        .get(format!("{}/api/docs.css", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status().as_u16(), 200);
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");

    api.stop().await;
    env.cleanup(&[]).await;
}

/// Runs `openapi-spec-validator` (the PyPI package) on the served document.
fn validate(document: &str) {
    let file = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("openapi.json");
    std::fs::write(&file, document).unwrap();
    let out = std::process::Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named"),
        "openapi-spec-validator is not installed: run `bash scripts/dev-deps.sh`\n{stderr}"
    );
    assert!(
        out.status.success(),
        "the document is not valid OpenAPI:\n{stdout}\n{stderr}"
    );
}
