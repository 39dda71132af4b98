//! The billing read endpoints against the owners' real schemas: the sync worker's, the
//! matcher's and the risk engine's migrations create them, the test stores a book the way
//! those services lay it out (two Stripe customers from two Stripe accounts linked to one
//! CSCX account, an ambiguous one, a second account, a second tenant reusing the same Stripe
//! ids), and every endpoint must aggregate exactly the linked customers of the caller's
//! tenant: pagination without gaps or repeats, filters, MRR per currency and its 12-month
//! movement, signals, revenue at risk, audit entries; and 400/401/404 for bad input, missing
//! tokens and other tenants' accounts.

use std::collections::BTreeSet;

use diesel_async::{AsyncConnection as _, AsyncPgConnection, SimpleAsyncConnection as _};
use platform::testing::TestEnv;
use query_api::auth::Role;
use reqwest::Method;
use serde_json::Value;

const JWT: &[u8] = b"billing-reads-test-secret-billing-reads!!";
const TENANT: &str = "t-reads";
const OTHER: &str = "t-other";

/// The book of `TENANT`: acc-acme has cus_us (platform account, USD) and cus_eu (a connected
/// account, EUR); acc-globex has cus_glx; cus_amb waits for review; acc-empty has nobody.
fn book() -> String {
    let t = TENANT;
    let mut sql = format!(
        "
INSERT INTO matching.accounts (tenant_id, account_id, name, csm_user_id, source_updated_ms) VALUES
  ('{t}', 'acc-acme', 'Acme Corp', 'csm-ana', 1),
  ('{t}', 'acc-globex', 'Globex', 'csm-bob', 1),
  ('{t}', 'acc-empty', 'Empty Ltd', NULL, 1);
INSERT INTO matching.customers (tenant_id, stripe_customer_id, stripe_account_id, email, name, source_occurred_at) VALUES
  ('{t}', 'cus_us', 'acct_platform', 'ap@acme.com', 'Acme Corp', 1),
  ('{t}', 'cus_eu', 'acct_connected', 'eu@acme.de', 'Acme GmbH', 1),
  ('{t}', 'cus_glx', 'acct_platform', 'ap@globex.com', 'Globex', 1),
  ('{t}', 'cus_amb', 'acct_platform', 'x@gmail.com', 'Acme?', 1);
INSERT INTO matching.links (tenant_id, stripe_customer_id, stripe_account_id, account_id, status, method, confidence, evidence, decided_by, version) VALUES
  ('{t}', 'cus_us', 'acct_platform', 'acc-acme', 'linked', 'email_domain', 0.9, '[{{\"rule\": \"email_domain\", \"domain\": \"acme.com\"}}]', 'matcher', 1),
  ('{t}', 'cus_eu', 'acct_connected', 'acc-acme', 'manual', 'manual', 1.0, '[]', 'admin-al', 1),
  ('{t}', 'cus_glx', 'acct_platform', 'acc-globex', 'linked', 'metadata_id', 1.0, '[]', 'matcher', 1),
  ('{t}', 'cus_amb', 'acct_platform', NULL, 'ambiguous', NULL, 0.5, '[]', 'matcher', 1);

INSERT INTO billing.stripe_customers (tenant_id, account_id, stripe_customer_id, email, name, currency, default_payment_method, created_at, source_created) VALUES
  ('{t}', 'acct_platform', 'cus_us', 'ap@acme.com', 'Acme Corp', 'usd', 'pm_us', now() - interval '400 days', 1),
  ('{t}', 'acct_connected', 'cus_eu', 'eu@acme.de', 'Acme GmbH', 'eur', NULL, now() - interval '300 days', 1),
  ('{t}', 'acct_platform', 'cus_glx', 'ap@globex.com', 'Globex', 'usd', NULL, now() - interval '300 days', 1),
  ('{t}', 'acct_platform', 'cus_amb', 'x@gmail.com', 'Acme?', 'usd', NULL, now() - interval '30 days', 1);
INSERT INTO billing.payment_methods (tenant_id, account_id, payment_method_id, stripe_customer_id, kind, card_brand, card_last4, exp_month, exp_year, source_created) VALUES
  ('{t}', 'acct_platform', 'pm_us', 'cus_us', 'card', 'visa', '4242', 12, 2026, 1);
INSERT INTO billing.products (tenant_id, account_id, product_id, name, active, source_created) VALUES
  ('{t}', 'acct_platform', 'prod_pro', 'Pro', true, 1);
INSERT INTO billing.stripe_subscriptions (tenant_id, account_id, stripe_customer_id, stripe_subscription_id, status, plan_name, mrr_cents, currency, quantity, current_period_start, current_period_end, cancel_at_period_end, created_at, source_created) VALUES
  ('{t}', 'acct_platform', 'cus_us', 'sub_us', 'active', 'Pro', 50000, 'usd', 10, now() - interval '10 days', now() + interval '20 days', true, now() - interval '200 days', 1),
  ('{t}', 'acct_connected', 'cus_eu', 'sub_eu', 'past_due', 'Team', 20000, 'eur', 4, now() - interval '5 days', now() + interval '25 days', false, now() - interval '100 days', 1),
  ('{t}', 'acct_platform', 'cus_us', 'sub_old', 'canceled', 'Starter', 0, 'usd', 1, NULL, NULL, false, now() - interval '390 days', 1),
  ('{t}', 'acct_platform', 'cus_glx', 'sub_glx', 'active', 'Enterprise', 99900, 'usd', 50, NULL, NULL, false, now() - interval '300 days', 1),
  ('{t}', 'acct_platform', 'cus_amb', 'sub_amb', 'active', 'Pro', 7000, 'usd', 1, NULL, NULL, false, now() - interval '30 days', 1);
INSERT INTO billing.subscription_items (tenant_id, account_id, stripe_item_id, stripe_subscription_id, price_id, product_id, quantity, unit_amount, currency, interval, interval_count, usage_type) VALUES
  ('{t}', 'acct_platform', 'si_us', 'sub_us', 'price_pro', 'prod_pro', 10, 5000, 'usd', 'month', 1, 'licensed');
INSERT INTO billing.subscription_changes (tenant_id, account_id, stripe_subscription_id, stripe_customer_id, changed_at, source, movement, status_before, status_after, quantity_before, quantity_after, mrr_before_cents, mrr_after_cents, currency) VALUES
  ('{t}', 'acct_platform', 'sub_us', 'cus_us', now() - interval '200 days', 'backfill', 'new', NULL, 'active', NULL, 6, 0, 30000, 'usd'),
  ('{t}', 'acct_platform', 'sub_us', 'cus_us', now() - interval '40 days', 'event', 'expansion', 'active', 'active', 6, 10, 30000, 50000, 'usd'),
  ('{t}', 'acct_platform', 'sub_old', 'cus_us', now() - interval '400 days', 'backfill', 'new', NULL, 'active', NULL, 1, 0, 10000, 'usd'),
  ('{t}', 'acct_platform', 'sub_old', 'cus_us', now() - interval '20 days', 'event', 'churn', 'active', 'canceled', 1, 1, 10000, 0, 'usd'),
  ('{t}', 'acct_connected', 'sub_eu', 'cus_eu', now() - interval '100 days', 'backfill', 'new', NULL, 'active', NULL, 4, 0, 20000, 'eur'),
  ('{t}', 'acct_platform', 'sub_glx', 'cus_glx', now() - interval '60 days', 'event', 'new', 'incomplete', 'active', NULL, 50, 0, 99900, 'usd');
"
    );
    // 25 USD invoices, one a day, newest first: in_us_00 is open with two failed attempts,
    // in_us_03 uncollectible, the rest paid; 3 EUR ones (in_eu_1 open); 2 of Globex.
    for day in 0..25 {
        let status = match day {
            0 => "open",
            3 => "uncollectible",
            _ => "paid",
        };
        sql.push_str(&format!(
            "INSERT INTO billing.stripe_invoices (tenant_id, account_id, stripe_customer_id, stripe_invoice_id, stripe_subscription_id, number, amount_cents, amount_paid, amount_remaining, total, currency, status, attempt_count, created_at, due_date, source_created) \
             VALUES ('{t}', 'acct_platform', 'cus_us', 'in_us_{day:02}', 'sub_us', 'ACME-{day:04}', 50000, {paid}, {left}, 50000, 'usd', '{status}', {attempts}, now() - interval '{day} days' - interval '1 hour', now() - interval '{day} days' + interval '7 days', 1);\n\
             INSERT INTO billing.invoice_lines (tenant_id, account_id, stripe_invoice_id, line_id, stripe_subscription_id, price_id, description, amount, currency, quantity) \
             VALUES ('{t}', 'acct_platform', 'in_us_{day:02}', 'il_{day:02}_a', 'sub_us', 'price_pro', '10 × Pro', 50000, 'usd', 10);\n",
            paid = if status == "paid" { 50000 } else { 0 },
            left = if status == "paid" { 0 } else { 50000 },
            attempts = if day == 0 { 2 } else { 1 },
        ));
    }
    sql.push_str(&format!(
        "
INSERT INTO billing.invoice_lines (tenant_id, account_id, stripe_invoice_id, line_id, description, amount, currency, quantity) VALUES
  ('{t}', 'acct_platform', 'in_us_00', 'il_00_b', 'Overage', 1200, 'usd', 1);
INSERT INTO billing.payment_attempts (tenant_id, account_id, charge_id, stripe_customer_id, stripe_invoice_id, attempted_at, amount, currency, outcome, failure_code, failure_message, attempt_number, source_created) VALUES
  ('{t}', 'acct_platform', 'ch_1', 'cus_us', 'in_us_00', now() - interval '50 minutes', 50000, 'usd', 'failed', 'card_declined', 'Your card was declined.', 1, 1),
  ('{t}', 'acct_platform', 'ch_2', 'cus_us', 'in_us_00', now() - interval '10 minutes', 50000, 'usd', 'failed', 'insufficient_funds', 'Your card has insufficient funds.', 2, 1),
  ('{t}', 'acct_platform', 'ch_3', 'cus_us', 'in_us_01', now() - interval '1 day', 50000, 'usd', 'succeeded', NULL, NULL, 1, 1);
INSERT INTO billing.stripe_invoices (tenant_id, account_id, stripe_customer_id, stripe_invoice_id, amount_cents, amount_paid, amount_remaining, total, currency, status, created_at, source_created) VALUES
  ('{t}', 'acct_connected', 'cus_eu', 'in_eu_1', 20000, 0, 20000, 20000, 'eur', 'open', now() - interval '2 days', 1),
  ('{t}', 'acct_connected', 'cus_eu', 'in_eu_2', 20000, 20000, 0, 20000, 'eur', 'paid', now() - interval '32 days', 1),
  ('{t}', 'acct_connected', 'cus_eu', 'in_eu_3', 20000, 20000, 0, 20000, 'eur', 'paid', now() - interval '62 days', 1),
  ('{t}', 'acct_platform', 'cus_glx', 'in_glx_1', 99900, 99900, 0, 99900, 'usd', 'paid', now() - interval '3 days', 1),
  ('{t}', 'acct_platform', 'cus_amb', 'in_amb_1', 7000, 0, 7000, 7000, 'usd', 'open', now() - interval '1 days', 1);
INSERT INTO billing.disputes (tenant_id, account_id, dispute_id, charge_id, stripe_customer_id, amount, currency, reason, status, evidence_due_by, created_at, source_created) VALUES
  ('{t}', 'acct_platform', 'dp_open', 'ch_3', 'cus_us', 12500, 'usd', 'product_not_received', 'needs_response', now() + interval '2 days', now() - interval '5 days', 1),
  ('{t}', 'acct_connected', 'dp_lost', 'ch_eu', 'cus_eu', 20000, 'eur', 'fraudulent', 'lost', NULL, now() - interval '30 days', 1),
  ('{t}', 'acct_platform', 'dp_old', 'ch_old', 'cus_us', 5000, 'usd', 'duplicate', 'won', NULL, now() - interval '400 days', 1),
  ('{t}', 'acct_platform', 'dp_glx', 'ch_glx', 'cus_glx', 99900, 'usd', 'general', 'under_review', NULL, now() - interval '1 days', 1);

INSERT INTO risk.signals (id, tenant_id, kind, cause_key, stripe_customer_id, stripe_account_id, account_id, severity, summary, evidence, objects, occurred_at, raised_at, updated_at, resolved_at, resolution, source) VALUES
  ('00000000-0000-0000-0000-00000000000a', '{t}', 'payment_failed', 'in_us_00', 'cus_us', 'acct_platform', 'acc-acme', 'high', 'Payment of $500.00 failed (attempt 2)', '{{\"attempt\": 2, \"failure_code\": \"insufficient_funds\"}}', '{{in_us_00}}', now() - interval '10 minutes', now() - interval '9 minutes', now() - interval '9 minutes', NULL, NULL, 'event'),
  ('00000000-0000-0000-0000-00000000000b', '{t}', 'card_expiring', 'pm_us', 'cus_us', 'acct_platform', 'acc-acme', 'medium', 'Visa •••• 4242 expires 12/2026', '{{}}', '{{pm_us}}', now() - interval '2 days', now() - interval '2 days', now() - interval '2 days', NULL, NULL, 'scan'),
  ('00000000-0000-0000-0000-00000000000c', '{t}', 'cancellation_requested', 'sub_us', 'cus_us', 'acct_platform', 'acc-acme', 'high', 'Cancellation requested', '{{}}', '{{sub_us}}', now() - interval '30 days', now() - interval '30 days', now() - interval '25 days', now() - interval '25 days', 'cancellation_withdrawn', 'event'),
  ('00000000-0000-0000-0000-00000000000d', '{t}', 'card_expiring', 'pm_glx', 'cus_glx', 'acct_platform', 'acc-globex', 'medium', 'Card expires soon', '{{}}', '{{pm_glx}}', now() - interval '1 day', now() - interval '1 day', now() - interval '1 day', NULL, NULL, 'scan');
INSERT INTO risk.health (tenant_id, account_id, score, band, components, computed_at, version) VALUES
  ('{t}', 'acc-acme', 62, 'watch', '[{{\"kind\": \"payment_failed\", \"points\": 30}}]', now(), 3);
INSERT INTO risk.links (tenant_id, stripe_customer_id, stripe_account_id, account_id, csm_user_id, version) VALUES
  ('{t}', 'cus_us', 'acct_platform', 'acc-acme', 'csm-ana', 1),
  ('{t}', 'cus_eu', 'acct_connected', 'acc-acme', 'csm-ana', 1),
  ('{t}', 'cus_glx', 'acct_platform', 'acc-globex', 'csm-bob', 1);
INSERT INTO risk.subscriptions (tenant_id, stripe_subscription_id, stripe_customer_id, status, mrr, currency, cancel_at_period_end, source_occurred_at) VALUES
  ('{t}', 'sub_us', 'cus_us', 'active', 50000, 'usd', true, 1),
  ('{t}', 'sub_eu', 'cus_eu', 'past_due', 20000, 'eur', false, 1),
  ('{t}', 'sub_glx', 'cus_glx', 'active', 99900, 'usd', false, 1);
"
    ));
    // The other tenant reuses cus_us (same Stripe account) for its own account acc-b.
    let o = OTHER;
    sql.push_str(&format!(
        "
INSERT INTO matching.accounts (tenant_id, account_id, name, source_updated_ms) VALUES ('{o}', 'acc-b', 'Other Co', 1);
INSERT INTO matching.links (tenant_id, stripe_customer_id, stripe_account_id, account_id, status, method, confidence, decided_by, version) VALUES
  ('{o}', 'cus_us', 'acct_platform', 'acc-b', 'linked', 'metadata_id', 1.0, 'matcher', 1);
INSERT INTO billing.stripe_customers (tenant_id, account_id, stripe_customer_id, email, name, currency, source_created) VALUES
  ('{o}', 'acct_platform', 'cus_us', 'secret@other.example', 'Other Co', 'usd', 1);
INSERT INTO billing.stripe_invoices (tenant_id, account_id, stripe_customer_id, stripe_invoice_id, amount_cents, amount_paid, amount_remaining, total, currency, status, created_at, source_created) VALUES
  ('{o}', 'acct_platform', 'cus_us', 'in_other_1', 100, 100, 0, 100, 'usd', 'paid', now(), 1);
INSERT INTO billing.disputes (tenant_id, account_id, dispute_id, charge_id, stripe_customer_id, amount, currency, reason, status, created_at, source_created) VALUES
  ('{o}', 'acct_platform', 'dp_other', 'ch_other', 'cus_us', 100, 'usd', 'fraudulent', 'needs_response', now(), 1);
"
    ));
    sql
}

async fn setup() -> (TestEnv, query_api::testing::InProcess) {
    let env = TestEnv::new();
    let api = query_api::testing::InProcess::start(
        env.common.clone(),
        query_api::testing::settings(false),
        JWT,
        [9u8; 32],
    )
    .await;
    // The owners' schemas, exactly as their services migrate them.
    for spec in [sync_worker::spec(), matcher::spec(), risk_engine::spec()] {
        platform::service::migrate(&spec, &env.common)
            .await
            .unwrap();
    }
    let mut conn = AsyncPgConnection::establish(&env.common.database.url)
        .await
        .unwrap();
    conn.batch_execute(&book()).await.unwrap();
    (env, api)
}

async fn get(api: &query_api::testing::InProcess, path: &str, token: &str) -> (u16, Value) {
    api.call(Method::GET, path, Some(token), None).await
}

async fn ok(api: &query_api::testing::InProcess, path: &str, token: &str) -> Value {
    let (status, body) = get(api, path, token).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

fn ids(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|v| v[key].as_str().unwrap().to_owned())
        .collect()
}

const ENDPOINTS: [&str; 5] = [
    "/api/stripe/customer/",
    "/api/stripe/subscriptions/",
    "/api/stripe/invoices/",
    "/api/stripe/mrr/",
    "/api/stripe/signals/",
];

#[tokio::test(flavor = "multi_thread")]
async fn every_read_aggregates_the_linked_customers_of_the_callers_tenant_only() {
    let (env, api) = setup().await;
    let ana = api.keys.mint(TENANT, "csm-ana", &[Role::Csm], 600).unwrap();
    let stranger = api.keys.mint(OTHER, "csm-zed", &[Role::Csm], 600).unwrap();

    // --- customer: both linked customers, how they were matched, card, health, signals, MRR.
    let summary = ok(&api, "/api/stripe/customer/acc-acme", &ana).await;
    assert_eq!(summary["account"]["account_id"], "acc-acme");
    assert_eq!(summary["account"]["csm_user_id"], "csm-ana");
    let customers = &summary["stripe_customers"];
    assert_eq!(ids(customers, "stripe_customer_id"), ["cus_eu", "cus_us"]);
    let (eu, us) = (&customers[0], &customers[1]);
    assert_eq!(eu["stripe_account_id"], "acct_connected");
    assert_eq!(eu["match"]["status"], "manual");
    assert_eq!(eu["match"]["decided_by"], "admin-al");
    assert_eq!(eu["default_card"], Value::Null);
    assert_eq!(us["match"]["method"], "email_domain");
    assert_eq!(us["match"]["confidence"], 0.9);
    assert_eq!(us["match"]["evidence"][0]["domain"], "acme.com");
    assert_eq!(us["default_card"]["brand"], "visa");
    assert_eq!(us["default_card"]["last4"], "4242");
    assert_eq!(us["default_card"]["exp_year"], 2026);
    // The worst stage over its invoices: in_us_03 went uncollectible.
    assert_eq!(us["payment_pattern"]["dunning_stage"], "uncollectible");
    assert_eq!(us["payment_pattern"]["failed_attempts_30d"], 2);
    assert_eq!(us["payment_pattern"]["open_invoices"], 1);
    assert_eq!(summary["billing_health"]["score"], 62);
    assert_eq!(summary["billing_health"]["band"], "watch");
    // Open signals only, most severe first; acc-globex's never.
    assert_eq!(
        ids(&summary["open_signals"], "kind"),
        ["payment_failed", "card_expiring"]
    );
    assert_eq!(summary["open_signals"][0]["evidence"]["attempt"], 2);
    let mrr = &summary["mrr"];
    assert_eq!(ids(mrr, "currency"), ["eur", "usd"]);
    assert_eq!(mrr[0]["mrr_cents"], 20000);
    assert_eq!(mrr[1]["mrr_cents"], 50000, "sub_old is canceled: 0");
    assert_eq!(mrr[1]["arr_cents"], 600000);
    // Disputes: the open one first, then the recently closed; not the one closed 400 days
    // ago, not Globex's, not the other tenant's on the same Stripe customer id.
    let disputes = &summary["disputes"];
    assert_eq!(ids(disputes, "dispute_id"), ["dp_open", "dp_lost"]);
    assert_eq!(disputes[0]["open"], true);
    assert_eq!(disputes[0]["amount"], 12500);
    assert_eq!(disputes[0]["reason"], "product_not_received");
    assert!(disputes[0]["evidence_due_by"].is_string());
    assert_eq!(disputes[1]["status"], "lost");
    assert_eq!(disputes[1]["open"], false);

    // An account nobody is linked to yet: empty, not an error.
    let empty = ok(&api, "/api/stripe/customer/acc-empty", &ana).await;
    assert_eq!(empty["stripe_customers"], serde_json::json!([]));
    assert_eq!(empty["billing_health"], Value::Null);
    let empty_invoices = ok(&api, "/api/stripe/invoices/acc-empty", &ana).await;
    assert_eq!(empty_invoices["data"], serde_json::json!([]));

    // --- subscriptions: live ones first, items with product names, history newest first.
    let subs = ok(&api, "/api/stripe/subscriptions/acc-acme", &ana).await;
    let data = &subs["data"];
    assert_eq!(
        ids(data, "stripe_subscription_id"),
        ["sub_eu", "sub_us", "sub_old"]
    );
    let sub_us = &data[1];
    assert_eq!(sub_us["cancel_at_period_end"], true);
    assert_eq!(sub_us["quantity"], 10);
    assert_eq!(sub_us["items"][0]["product_name"], "Pro");
    assert_eq!(sub_us["items"][0]["unit_amount"], 5000);
    assert_eq!(ids(&sub_us["history"], "movement"), ["expansion", "new"]);
    assert_eq!(sub_us["history"][0]["quantity_before"], 6);
    assert_eq!(sub_us["history"][0]["baseline"], false);
    assert_eq!(sub_us["history"][1]["baseline"], true);
    assert_eq!(data[2]["history"][0]["movement"], "churn");

    // --- invoices: 28 of acc-acme in pages of 10, newest first, no gap, no repeat.
    let mut seen = Vec::new();
    let mut path = "/api/stripe/invoices/acc-acme?limit=10".to_owned();
    let mut pages = 0;
    loop {
        let page = ok(&api, &path, &ana).await;
        pages += 1;
        seen.extend(ids(&page["data"], "stripe_invoice_id"));
        if page["has_more"] == false {
            assert_eq!(page["next_cursor"], Value::Null);
            break;
        }
        let cursor = page["next_cursor"].as_str().unwrap();
        path = format!("/api/stripe/invoices/acc-acme?limit=10&starting_after={cursor}");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 28);
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), 28);
    assert!(seen
        .iter()
        .all(|id| id.starts_with("in_us_") || id.starts_with("in_eu_")));
    assert_eq!(&seen[..3], ["in_us_00", "in_us_01", "in_eu_1"]);
    let first = ok(&api, "/api/stripe/invoices/acc-acme?limit=1", &ana).await;
    let latest = &first["data"][0];
    assert_eq!(latest["status"], "open");
    assert_eq!(latest["amount_due"], 50000);
    assert_eq!(latest["amount_remaining"], 50000);
    assert_eq!(ids(&latest["lines"], "line_id"), ["il_00_a", "il_00_b"]);
    let attempts = &latest["payment_attempts"];
    assert_eq!(
        ids(attempts, "failure_code"),
        ["card_declined", "insufficient_funds"]
    );
    assert_eq!(attempts[1]["attempt_number"], 2);
    assert_eq!(attempts[1]["outcome"], "failed");
    // Filters: status (several), dates (a bare date is a whole UTC day).
    let open = ok(
        &api,
        "/api/stripe/invoices/acc-acme?status=open,uncollectible",
        &ana,
    )
    .await;
    assert_eq!(
        ids(&open["data"], "stripe_invoice_id"),
        ["in_us_00", "in_eu_1", "in_us_03"]
    );
    let today = chrono::Utc::now().date_naive();
    let since = today - chrono::Duration::days(40);
    let window = ok(
        &api,
        &format!("/api/stripe/invoices/acc-acme?limit=100&created_gte={since}&created_lte={today}"),
        &ana,
    )
    .await;
    assert!(ids(&window["data"], "stripe_invoice_id").contains(&"in_eu_2".to_owned()));
    assert!(!ids(&window["data"], "stripe_invoice_id").contains(&"in_eu_3".to_owned()));

    // --- MRR: per currency, per live subscription, and the 12-month movement.
    let report = ok(&api, "/api/stripe/mrr/acc-acme", &ana).await;
    assert_eq!(ids(&report["current"], "currency"), ["eur", "usd"]);
    assert_eq!(
        ids(&report["subscriptions"], "stripe_subscription_id"),
        ["sub_eu", "sub_us"]
    );
    let months = report["movement"]["months"].as_array().unwrap();
    let usd: Vec<&Value> = months.iter().filter(|m| m["currency"] == "usd").collect();
    let this_month = format!("{}", today.format("%Y-%m"));
    let last = usd.last().unwrap();
    assert_eq!(last["month"], this_month);
    assert_eq!(last["mrr"], 50000);
    let sum = |key: &str| usd.iter().map(|m| m[key].as_i64().unwrap()).sum::<i64>();
    assert_eq!(sum("expansion"), 20000);
    assert_eq!(sum("churn"), -10000);
    assert_eq!(
        sum("new"),
        0,
        "backfilled baselines are levels, not new revenue"
    );
    assert_eq!(usd.len(), 12, "sub_old was known 400 days ago");
    let eur_now = months
        .iter()
        .find(|m| m["currency"] == "eur" && m["month"] == this_month)
        .unwrap();
    assert_eq!(eur_now["mrr"], 20000);

    // --- signals: open by default, all, by kind, paged.
    let open = ok(&api, "/api/stripe/signals/acc-acme", &ana).await;
    assert_eq!(
        ids(&open["data"], "kind"),
        ["payment_failed", "card_expiring"]
    );
    let all = ok(&api, "/api/stripe/signals/acc-acme?status=all", &ana).await;
    assert_eq!(all["data"].as_array().unwrap().len(), 3);
    let resolved = ok(&api, "/api/stripe/signals/acc-acme?status=resolved", &ana).await;
    assert_eq!(resolved["data"][0]["resolution"], "cancellation_withdrawn");
    let cards = ok(
        &api,
        "/api/stripe/signals/acc-acme?kind=card_expiring",
        &ana,
    )
    .await;
    assert_eq!(
        ids(&cards["data"], "signal_id"),
        ["00000000-0000-0000-0000-00000000000b"]
    );
    let page = ok(
        &api,
        "/api/stripe/signals/acc-acme?status=all&limit=2",
        &ana,
    )
    .await;
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest = ok(
        &api,
        &format!("/api/stripe/signals/acc-acme?status=all&limit=2&starting_after={cursor}"),
        &ana,
    )
    .await;
    assert_eq!(ids(&rest["data"], "kind"), ["cancellation_requested"]);

    // --- revenue at risk: acc-acme has an open payment signal; acc-globex only a card one.
    let risk = ok(&api, "/api/stripe/revenue-at-risk", &ana).await;
    assert_eq!(risk["total"]["usd"], 50000);
    assert_eq!(risk["total"]["eur"], 20000);
    assert_eq!(ids(&risk["accounts"], "account_id"), ["acc-acme"]);
    assert_eq!(risk["by_csm"][0]["csm_user_id"], "csm-ana");
    let bobs = ok(
        &api,
        "/api/stripe/revenue-at-risk?csm_user_id=csm-bob",
        &ana,
    )
    .await;
    assert_eq!(bobs["accounts"], serde_json::json!([]));

    // --- the other tenant: its own cus_us only, never acc-acme's data.
    let theirs = ok(&api, "/api/stripe/invoices/acc-b", &stranger).await;
    assert_eq!(ids(&theirs["data"], "stripe_invoice_id"), ["in_other_1"]);
    let their_customer = ok(&api, "/api/stripe/customer/acc-b", &stranger).await;
    assert_eq!(
        their_customer["stripe_customers"][0]["email"],
        "secret@other.example"
    );
    let their_risk = ok(&api, "/api/stripe/revenue-at-risk", &stranger).await;
    assert_eq!(their_risk["accounts"], serde_json::json!([]));
    for endpoint in ENDPOINTS {
        let (status, body) = get(&api, &format!("{endpoint}acc-acme"), &stranger).await;
        assert_eq!(status, 404, "{endpoint}: {body}");
        assert_eq!(body["error"]["code"], "not_found");
        let (status, _) = get(&api, &format!("{endpoint}acc-b"), &ana).await;
        assert_eq!(status, 404, "{endpoint} leaks acc-b");
    }

    // --- audit: who read which account; no billing data in the entries.
    let mut conn = AsyncPgConnection::establish(&env.common.database.url)
        .await
        .unwrap();
    #[derive(diesel::QueryableByName)]
    struct Entry {
        #[diesel(sql_type = diesel::sql_types::Text)]
        action: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        detail: String,
    }
    let entries: Vec<Entry> = diesel_async::RunQueryDsl::load(
        diesel::sql_query(
            "SELECT action, detail::text AS detail FROM integration.audit_log \
             WHERE tenant_id = 't-reads' AND actor = 'csm-ana' AND target = 'acc-acme'",
        ),
        &mut conn,
    )
    .await
    .unwrap();
    let actions: BTreeSet<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    for action in [
        "billing.customer.read",
        "billing.subscriptions.read",
        "billing.invoices.read",
        "billing.mrr.read",
        "billing.signals.read",
    ] {
        assert!(
            actions.contains(action),
            "{action} not audited: {actions:?}"
        );
    }
    assert!(entries
        .iter()
        .all(|e| !e.detail.contains("acme.com") && !e.detail.contains("4242")));

    api.stop().await;
    env.cleanup(&[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_ids_filters_cursors_and_missing_tokens_are_refused() {
    let (env, api) = setup().await;
    let ana = api.keys.mint(TENANT, "csm-ana", &[Role::Csm], 600).unwrap();
    let no_role = api.keys.mint(TENANT, "viewer", &[], 600).unwrap();
    for endpoint in ENDPOINTS {
        let path = format!("{endpoint}acc-acme");
        let (status, _) = api.call(Method::GET, &path, None, None).await;
        assert_eq!(status, 401, "{path} without a token");
        let (status, _) = api.call(Method::GET, &path, Some("not-a-jwt"), None).await;
        assert_eq!(status, 401, "{path} with a forged token");
        let (status, _) = get(&api, &path, &no_role).await;
        assert_eq!(status, 403, "{path} without a role");
        let (status, _) = get(&api, &format!("{endpoint}acc-nobody"), &ana).await;
        assert_eq!(status, 404, "{path} unknown account");
        for bad in ["%20acc-acme", "acc%00acme", &"x".repeat(129)] {
            let (status, body) = get(&api, &format!("{endpoint}{bad}"), &ana).await;
            assert_eq!(status, 400, "{endpoint}{bad}: {body}");
            assert_eq!(body["error"]["code"], "bad_request");
        }
    }
    for query in [
        "status=late",
        "limit=0",
        "limit=101",
        "limit=ten",
        "created_gte=tomorrow",
        "created_gte=2026-11-02&created_lte=2026-11-01",
        "starting_after=garbage",
        "unknown=1",
    ] {
        let (status, body) = get(
            &api,
            &format!("/api/stripe/invoices/acc-acme?{query}"),
            &ana,
        )
        .await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["code"], "bad_request", "{query}");
    }
    for query in [
        "status=closed",
        "kind=bogus",
        "limit=201",
        "starting_after=%%%",
    ] {
        let (status, _) = get(&api, &format!("/api/stripe/signals/acc-acme?{query}"), &ana).await;
        assert_eq!(status, 400, "signals {query}");
    }
    let (status, _) = get(&api, "/api/stripe/revenue-at-risk?csm=ana", &ana).await;
    assert_eq!(status, 400);
    let (status, _) = api
        .call(Method::GET, "/api/stripe/revenue-at-risk", None, None)
        .await;
    assert_eq!(status, 401);
    // Refusals are not reads: nothing audited for them.
    let mut conn = AsyncPgConnection::establish(&env.common.database.url)
        .await
        .unwrap();
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let audited: Count = diesel_async::RunQueryDsl::get_result(
        diesel::sql_query(
            "SELECT count(*) AS n FROM integration.audit_log WHERE action LIKE 'billing.%'",
        ),
        &mut conn,
    )
    .await
    .unwrap();
    assert_eq!(audited.n, 0);
    api.stop().await;
    env.cleanup(&[]).await;
}

async fn chat(
    api: &query_api::testing::InProcess,
    token: Option<&str>,
    body: Value,
) -> (u16, Value) {
    api.call(Method::POST, "/api/stripe/chat", token, Some(body))
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn chat_answers_the_prds_questions_about_an_account_named_in_the_text() {
    let (env, api) = setup().await;
    let ana = api.keys.mint(TENANT, "csm-ana", &[Role::Csm], 600).unwrap();

    let (status, status_reply) = chat(
        &api,
        Some(&ana),
        serde_json::json!({ "text": "What's the billing status for Acme Corp?" }),
    )
    .await;
    assert_eq!(status, 200, "{status_reply}");
    assert_eq!(status_reply["command"], "billing_status");
    assert_eq!(status_reply["status"], "answered");
    assert_eq!(status_reply["account"]["account_id"], "acc-acme");
    let text = status_reply["reply"].as_str().unwrap();
    for expected in [
        "Acme Corp: billing health 62/100 (watch)",
        "2 subscriptions: 1 past due, 1 active",
        "1 subscription is set to cancel at period end",
        "MRR €200.00 (ARR €2,400.00) + $500.00 (ARR $6,000.00)",
        "Next invoice",
        "2 open signals: Payment of $500.00 failed (attempt 2) [high]",
        "1 open dispute: $125.00 (product not received, needs response, evidence due",
    ] {
        assert!(text.contains(expected), "{expected:?} not in {text:?}");
    }
    let answer = &status_reply["answer"];
    assert_eq!(answer["health"]["score"], 62);
    assert_eq!(ids(&answer["open_disputes"], "dispute_id"), ["dp_open"]);
    assert_eq!(answer["subscriptions"].as_array().unwrap().len(), 2);
    assert!(answer["next_invoice_at"].is_string(), "{answer}");

    // "acme" alone names Acme Corp: no other account of the tenant fits.
    let (status, failed) = chat(
        &api,
        Some(&ana),
        serde_json::json!({ "text": "any failed payments for acme?" }),
    )
    .await;
    assert_eq!(status, 200, "{failed}");
    assert_eq!(failed["command"], "failed_payments");
    let text = failed["reply"].as_str().unwrap();
    for expected in [
        "Acme Corp: 2 failed payments in the last 90 days",
        "(insufficient_funds: Your card has insufficient funds.)",
        "(card_declined: Your card was declined.)",
        "1 unpaid invoice: ACME-0000 $500.00 remaining after 2 attempts",
    ] {
        assert!(text.contains(expected), "{expected:?} not in {text:?}");
    }
    assert_eq!(
        ids(&failed["answer"]["failed_payments"], "charge_id"),
        ["ch_2", "ch_1"]
    );

    let (status, mrr) = chat(
        &api,
        Some(&ana),
        serde_json::json!({ "text": "Show MRR for Globex" }),
    )
    .await;
    assert_eq!(status, 200, "{mrr}");
    assert_eq!(mrr["command"], "mrr");
    assert!(
        mrr["reply"]
            .as_str()
            .unwrap()
            .starts_with("Globex MRR: $999.00 (ARR $11,988.00) from 1 subscription."),
        "{mrr}"
    );
    assert_eq!(mrr["answer"]["current"][0]["mrr_cents"], 99900);

    let (status, rule) = chat(
        &api,
        Some(&ana),
        serde_json::json!({ "text": "Alert me on payment failures" }),
    )
    .await;
    assert_eq!(status, 202, "{rule}");
    assert_eq!(rule["command"], "alert_rule");
    assert!(rule["reply"]
        .as_str()
        .unwrap()
        .starts_with("Alerting you on payment failures"));

    // Two accounts fit "Acme" once Acme Labs exists: a choice, then the picked one.
    let mut conn = AsyncPgConnection::establish(&env.common.database.url)
        .await
        .unwrap();
    conn.batch_execute(&format!(
        "INSERT INTO matching.accounts (tenant_id, account_id, name, source_updated_ms) \
         VALUES ('{TENANT}', 'acc-acme-labs', 'Acme Labs', 1)"
    ))
    .await
    .unwrap();
    let (status, choice) = chat(
        &api,
        Some(&ana),
        serde_json::json!({ "text": "Show MRR for Acme" }),
    )
    .await;
    assert_eq!(status, 200, "{choice}");
    assert_eq!(choice["status"], "choose");
    assert_eq!(
        ids(&choice["choices"], "account_id"),
        ["acc-acme", "acc-acme-labs"]
    );
    assert!(choice.get("answer").is_none());
    let (status, picked) = chat(
        &api,
        Some(&ana),
        serde_json::json!({ "text": "Show MRR for Acme", "account_id": "acc-acme" }),
    )
    .await;
    assert_eq!(status, 200, "{picked}");
    assert_eq!(picked["account"]["name"], "Acme Corp");

    // Unknown names, other tenants' accounts and bad input.
    let (status, unknown) = chat(
        &api,
        Some(&ana),
        serde_json::json!({ "text": "Show MRR for Hooli" }),
    )
    .await;
    assert_eq!(status, 404);
    assert!(unknown["error"]["message"]
        .as_str()
        .unwrap()
        .contains("\"Hooli\""));
    let (status, _) = chat(
        &api,
        Some(&ana),
        serde_json::json!({ "text": "Show MRR for Other Co" }),
    )
    .await;
    assert_eq!(status, 404, "another tenant's account name");
    let (status, _) = chat(
        &api,
        Some(&ana),
        serde_json::json!({ "text": "Show MRR", "account_id": "acc-b" }),
    )
    .await;
    assert_eq!(status, 404, "another tenant's account id");
    for bad in [
        serde_json::json!({ "text": "" }),
        serde_json::json!({ "text": "x".repeat(501) }),
        serde_json::json!({ "text": "hello there" }),
        serde_json::json!({ "text": "What's the billing status?" }),
        serde_json::json!({ "text": "Show MRR", "account_id": " acc-acme" }),
        serde_json::json!({ "words": "Show MRR for Acme Corp" }),
        serde_json::json!({ "text": 42 }),
    ] {
        let (status, body) = chat(&api, Some(&ana), bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "bad_request");
    }
    let text = serde_json::json!({ "text": "Show MRR for Acme Corp" });
    assert_eq!(chat(&api, None, text.clone()).await.0, 401);
    let viewer = api.keys.mint(TENANT, "viewer", &[], 600).unwrap();
    assert_eq!(chat(&api, Some(&viewer), text).await.0, 403);

    // Answers are reads of the account: audited with how they were asked.
    #[derive(diesel::QueryableByName)]
    struct Entry {
        #[diesel(sql_type = diesel::sql_types::Text)]
        action: String,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        target: Option<String>,
    }
    let entries: Vec<Entry> = diesel_async::RunQueryDsl::load(
        diesel::sql_query(
            "SELECT action, target FROM integration.audit_log \
             WHERE detail->>'via' = 'chat' ORDER BY id",
        ),
        &mut conn,
    )
    .await
    .unwrap();
    let seen: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e.action.as_str(), e.target.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert_eq!(seen[0], ("billing.overview.read", "acc-acme"));
    assert_eq!(seen[1], ("billing.overview.read", "acc-acme"));
    assert_eq!(seen[2], ("billing.mrr.read", "acc-globex"));
    assert_eq!(seen[3].0, "alerts.rule.created");
    assert!(seen[3].1.starts_with("rule_"), "{seen:?}");
    assert_eq!(seen[4], ("billing.mrr.read", "acc-acme"));
    api.stop().await;
    env.cleanup(&[]).await;
}

async fn page(
    api: &query_api::testing::InProcess,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut request = reqwest::Client::new().get(format!("{}{path}", api.base));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_widget_page_shows_the_accounts_billing_to_its_tenant_only() {
    let (env, api) = setup().await;
    let ana = api.keys.mint(TENANT, "csm-ana", &[Role::Csm], 600).unwrap();
    let (status, headers, html) =
        page(&api, &format!("/ui/accounts/acc-acme?token={ana}"), &[]).await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors https://cscx.test"), "{csp}");
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("script-src"),
        "{csp}"
    );
    for expected in [
        "<h1 id=\"account-name\">Acme Corp</h1>",
        "Past due",
        "$500.00 / month (ARR $6,000.00)",
        "€200.00 / month (ARR €2,400.00)",
        "Dunning: uncollectible",
        "Payment of $500.00 failed (attempt 2)",
        "Visa •••• 4242 expires 12/2026",
        "<th scope=\"row\">ACME-0000</th>",
        "insufficient_funds: Your card has insufficient funds.",
        "class=\"chart\"",
    ] {
        assert!(
            html.contains(expected),
            "{expected:?} missing from the widget"
        );
    }
    // The open invoice with failed attempts and the uncollectible one are highlighted.
    assert_eq!(html.matches("data-failed=\"true\"").count(), 2, "{html}");
    // Disputes: the open one, its evidence due in two days, highlighted; the lost one not.
    assert_eq!(
        html.matches("data-testid=\"dispute-row\"").count(),
        2,
        "{html}"
    );
    assert_eq!(html.matches("data-urgent=\"true\"").count(), 1, "{html}");
    for expected in [
        "$125.00",
        "Product not received",
        "Needs response",
        "€200.00",
        "Lost",
    ] {
        assert!(
            html.contains(expected),
            "{expected:?} missing from the disputes"
        );
    }
    assert!(!html.contains("<script"), "the page runs no script");
    // The header works too, and the stylesheet is ours, cacheable.
    let (status, _, _) = page(
        &api,
        "/ui/accounts/acc-acme",
        &[("authorization", &format!("Bearer {ana}"))],
    )
    .await;
    assert_eq!(status, 200);
    let (status, headers, css) = page(&api, "/ui/assets/widget.css", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/css; charset=utf-8");
    assert!(css.contains("tr.failed"));

    // Names are escaped, never markup.
    let mut conn = AsyncPgConnection::establish(&env.common.database.url)
        .await
        .unwrap();
    conn.batch_execute(&format!(
        "INSERT INTO matching.accounts (tenant_id, account_id, name, source_updated_ms) \
         VALUES ('{TENANT}', 'acc-evil', '<img src=x onerror=alert(1)> & Co', 1)"
    ))
    .await
    .unwrap();
    let (status, _, html) = page(&api, &format!("/ui/accounts/acc-evil?token={ana}"), &[]).await;
    assert_eq!(status, 200);
    assert!(!html.contains("<img src=x"), "unescaped name");
    assert!(
        html.contains("&#60;img src=x onerror=alert(1)&#62; &#38; Co") || html.contains("&lt;img"),
        "{html}"
    );

    // Refusals are pages too, with the right status and no data.
    let viewer = api.keys.mint(TENANT, "viewer", &[], 600).unwrap();
    let stranger = api.keys.mint(OTHER, "csm-x", &[Role::Csm], 600).unwrap();
    let expired = api
        .keys
        .mint(TENANT, "csm-ana", &[Role::Csm], -120)
        .unwrap();
    for (path, want) in [
        ("/ui/accounts/acc-acme".to_owned(), 401),
        (
            "/ui/accounts/acc-acme?token=forged.token.here".to_owned(),
            401,
        ),
        (format!("/ui/accounts/acc-acme?token={expired}"), 401),
        (format!("/ui/accounts/acc-acme?token={viewer}"), 403),
        (format!("/ui/accounts/acc-acme?token={stranger}"), 404),
        (format!("/ui/accounts/acc-nobody?token={ana}"), 404),
        (format!("/ui/accounts/%20acc-acme?token={ana}"), 400),
        (format!("/ui/accounts/acc-acme?token={ana}&debug=1"), 400),
    ] {
        let (status, headers, html) = page(&api, &path, &[]).await;
        assert_eq!(status, want, "{path}: {html}");
        assert!(headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        assert!(!html.contains("Acme Corp"), "{path} leaks data");
    }
    api.stop().await;
    env.cleanup(&[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cors_admits_the_cscx_origin_only_and_tokens_are_rate_limited() {
    let env = TestEnv::new();
    let mut settings = query_api::testing::settings(false);
    settings.rate_limit_per_second = 1;
    settings.rate_limit_burst = 3;
    let api =
        query_api::testing::InProcess::start(env.common.clone(), settings, JWT, [9u8; 32]).await;
    let client = reqwest::Client::new();
    let preflight = |origin: &'static str| {
        client
            .request(
                Method::OPTIONS,
                format!("{}/api/stripe/mrr/acc-acme", api.base),
            )
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let allowed = preflight("https://cscx.test").await.unwrap();
    assert!(allowed.status().is_success(), "{}", allowed.status());
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://cscx.test"
    );
    let refused = preflight("https://evil.test").await.unwrap();
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none(),
        "another origin is admitted"
    );

    // Three in a burst, then 429 with Retry-After; another token is not slowed; the
    // health endpoints are never limited.
    let ana = api.keys.mint(TENANT, "csm-ana", &[Role::Csm], 600).unwrap();
    let bob = api.keys.mint(TENANT, "csm-bob", &[Role::Csm], 600).unwrap();
    let path = "/api/integrations/stripe/connections";
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(get(&api, path, &ana).await.0);
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
    let limited = client
        .get(format!("{}{path}", api.base))
        .bearer_auth(&ana)
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status().as_u16(), 429);
    let wait: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(get(&api, path, &bob).await.0, 200);
    for _ in 0..5 {
        let health = client
            .get(format!("{}/healthz", api.base))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status().as_u16(), 200);
    }
    api.stop().await;
    env.cleanup(&[]).await;
}

/// The widget in a real browser: headless Chromium (Debian's `chromium`) driven by
/// playwright-core (`tests/browser`, installed by `scripts/dev-deps.sh`). Saves a
/// screenshot to `WIDGET_SCREENSHOT` (default: this test's temp dir); `make screenshots`
/// refreshes `docs/screenshots/widget.png`.
#[tokio::test(flavor = "multi_thread")]
async fn the_widget_in_a_real_browser_shows_mrr_and_a_highlighted_failed_invoice() {
    let browser_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        browser_dir.join("node_modules/playwright-core").exists()
            && std::path::Path::new("/usr/bin/chromium").exists(),
        "the browser test needs chromium and playwright-core: run `bash scripts/dev-deps.sh`"
    );
    let (env, api) = setup().await;
    let ana = api.keys.mint(TENANT, "csm-ana", &[Role::Csm], 600).unwrap();
    let screenshot = std::env::var("WIDGET_SCREENSHOT")
        .unwrap_or_else(|_| format!("{}/widget.png", env!("CARGO_TARGET_TMPDIR")));
    let url = format!("{}/ui/accounts/acc-acme?token={ana}", api.base);
    let output = tokio::process::Command::new("node")
        .arg(browser_dir.join("widget.mjs"))
        .arg(&url)
        .arg("$500.00 / month")
        .arg(&screenshot)
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "browser check failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let found: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(found["failedCount"], 2, "{found}");
    assert_eq!(found["status"], "Past due");
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 10_000);
    api.stop().await;
    env.cleanup(&[]).await;
}
