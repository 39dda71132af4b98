//! `make bench-api`: the billing read endpoints of a release `query-api` process under a
//! steady open-loop load, over a book of 10,000 synced CSCX accounts.
//!
//! The bench migrates every schema the read endpoints read (the sync worker's `billing`, the
//! matcher's `matching`, the risk engine's `risk`, query-api's `integration`) into a fresh
//! database and seeds it with set-based SQL the way those services lay their tables out: each
//! account has one or two linked Stripe customers (every third one also pays through a
//! connected account, in EUR), one or two subscriptions per customer (a quarter of them a
//! second, canceled one), a year of subscription changes, monthly invoices with their lines
//! and payment attempts (some failed, some retried), cards, billing health and open signals;
//! then vacuums, analyses and checkpoints it, so the load meets a settled database.
//!
//! Load: `BENCH_RATE` requests/s in total (default 500), alternating
//! `GET /api/stripe/mrr/{id}` and `GET /api/stripe/invoices/{id}` (default page of 20) over
//! random accounts, spread over `BENCH_TOKENS` csm tokens of the tenant (default 128, so each
//! stays far below a per-token rate limit), at most `BENCH_CONNECTIONS` requests in flight on
//! keep-alive connections (default 32), for `BENCH_SECONDS` (default 20) after
//! `BENCH_WARMUP_SECONDS` (default 3). Open loop: request `i` is due at `start + i / rate`
//! whatever happened before it, and its latency counts from that due time (so a stall shows
//! up in the requests queued behind it instead of slowing the generator down).
//!
//! Any answer other than 200 fails the run. Prints the latency distribution per endpoint, the
//! achieved rate, the CPU per request of query-api and of its Postgres backends, how busy the
//! machine was (other work on the same cores shows up here first) and query-api's peak RSS
//! (`VmHWM`); then per-endpoint `RESULT` lines, `RESULT api_rss_mb <n>` (target ≤ 150) and,
//! last, `RESULT api_p99_ms <n>` (p99 over every request of both endpoints; target ≤ 10 at
//! 500 req/s). `BENCH_ACCOUNTS` (default 10000) sizes the book; `BENCH_KEEP_DB=1` leaves the
//! database behind for `EXPLAIN ANALYZE`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, SimpleAsyncConnection as _};
use platform::amqp::Broker;
use platform::testing::{ServiceProcess, TestEnv};
use query_api::auth::{Role, TokenKeys};

const TENANT: &str = "bench";
const JWT_SECRET: &str = "bench-api-only-jwt-secret-0123456789abcdef";
const ENDPOINTS: [&str; 2] = ["mrr", "invoices"];

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn release_bin(name: &str) -> anyhow::Result<String> {
    let dir = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| {
        format!(
            "{}/.cache/billing-target",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    let path = format!("{dir}/release/{name}");
    anyhow::ensure!(
        std::path::Path::new(&path).exists(),
        "{path} missing: run `make bench-api`"
    );
    Ok(path)
}

/// A field of `/proc/<pid>/status` in kB.
fn proc_status_kb(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// User + system CPU time of a process so far, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces) start at "state"; utime and
    // stime are the 14th and 15th fields of the whole line.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    // CLK_TCK is 100 on Linux for every architecture we run on.
    ticks(11)
        .zip(ticks(12))
        .map_or(0.0, |(u, s)| (u + s) / 100.0)
}

/// Busy and total CPU seconds of the whole machine so far (`/proc/stat`, all cores).
fn machine_cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    let total: f64 = ticks.iter().sum();
    // idle and iowait are the 4th and 5th columns.
    let idle = ticks.get(3).unwrap_or(&0.0) + ticks.get(4).unwrap_or(&0.0);
    ((total - idle) / 100.0, total / 100.0)
}

/// CPU seconds of the Postgres backends serving the bench database, except `conn`'s own.
async fn backends_cpu_seconds(conn: &mut AsyncPgConnection) -> anyhow::Result<f64> {
    #[derive(diesel::QueryableByName)]
    struct Backend {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        pid: i32,
    }
    let backends: Vec<Backend> = diesel_async::RunQueryDsl::load(
        diesel::sql_query(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
             AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
        ),
        conn,
    )
    .await?;
    Ok(backends.iter().map(|b| cpu_seconds(b.pid as u32)).sum())
}

/// The nearest-rank percentile of sorted microseconds, in milliseconds.
fn percentile_ms(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)] as f64 / 1000.0
}

/// xorshift64*: reproducible account picks without another dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

fn account_id(n: u64) -> String {
    format!("acc-{n:05}")
}

/// The tenant's book: `n` CSCX accounts synced, as the sync worker, matcher and risk engine
/// store them. Temporary tables hold the generated shape; every row is derived from them.
fn book(n: u64) -> String {
    let t = TENANT;
    format!(
        r#"
-- Account a has customer k = 1 on the platform account (USD); every third account also a
-- customer k = 2 on a connected account (EUR).
CREATE TEMP TABLE bench_customers AS
SELECT a, k,
       'acc-' || lpad(a::text, 5, '0') AS account_id,
       CASE k WHEN 1 THEN 'acct_platform' ELSE 'acct_connected' END AS stripe_account,
       format('cus_%s_%s', a, k) AS customer,
       CASE k WHEN 1 THEN 'usd' ELSE 'eur' END AS currency
FROM generate_series(1, {n}) AS a, generate_series(1, 2) AS k
WHERE k = 1 OR a % 3 = 0;

INSERT INTO matching.accounts (tenant_id, account_id, name, domains, csm_user_id, source_updated_ms)
SELECT '{t}', 'acc-' || lpad(a::text, 5, '0'), 'Company ' || a, ARRAY['company' || a || '.example'],
       'csm-' || (a % 50), 1
FROM generate_series(1, {n}) AS a;
INSERT INTO matching.customers (tenant_id, stripe_customer_id, stripe_account_id, email, name, source_occurred_at)
SELECT '{t}', customer, stripe_account, 'billing@company' || a || '.example', 'Company ' || a, 1
FROM bench_customers;
INSERT INTO matching.links (tenant_id, stripe_customer_id, stripe_account_id, account_id, status, method,
                            confidence, evidence, decided_by, version)
SELECT '{t}', customer, stripe_account, account_id,
       CASE WHEN k = 2 THEN 'manual' ELSE 'linked' END,
       CASE WHEN k = 2 THEN 'manual' WHEN a % 2 = 0 THEN 'metadata_id' ELSE 'email_domain' END,
       CASE WHEN k = 1 AND a % 2 = 1 THEN 0.9 ELSE 1.0 END,
       '[]', CASE WHEN k = 2 THEN 'admin-bench' ELSE 'matcher' END, 1
FROM bench_customers;
-- Customers the matcher could not place (in the links table, on nobody's page).
INSERT INTO matching.links (tenant_id, stripe_customer_id, stripe_account_id, account_id, status, confidence,
                            decided_by, version)
SELECT '{t}', 'cus_unmatched_' || u, 'acct_platform', NULL,
       CASE WHEN u % 2 = 0 THEN 'ambiguous' ELSE 'unmatched' END, 0.5, 'matcher', 1
FROM generate_series(1, {n} / 20) AS u;

INSERT INTO billing.products (tenant_id, account_id, product_id, name, active, source_created)
SELECT '{t}', acct, 'prod_' || lower(p), p, true, 1
FROM unnest(ARRAY['acct_platform', 'acct_connected']) AS acct,
     unnest(ARRAY['Starter', 'Pro', 'Team', 'Enterprise']) AS p;
INSERT INTO billing.payment_methods (tenant_id, account_id, payment_method_id, stripe_customer_id, kind,
                                     card_brand, card_last4, exp_month, exp_year, source_created)
SELECT '{t}', stripe_account, 'pm_' || a || '_' || k, customer, 'card',
       (ARRAY['visa', 'mastercard', 'amex'])[1 + a % 3], lpad(((a * 7919) % 10000)::text, 4, '0'),
       1 + a % 12, 2026 + a % 4, 1
FROM bench_customers;
INSERT INTO billing.stripe_customers (tenant_id, account_id, stripe_customer_id, customer_id, email, name,
                                      currency, delinquent, default_payment_method, created_at, source_created)
SELECT '{t}', stripe_account, customer, account_id, 'billing@company' || a || '.example', 'Company ' || a,
       currency, a % 20 = 0, 'pm_' || a || '_' || k, now() - make_interval(days => 400 + a % 330), 1
FROM bench_customers;

-- Subscription s = 1 of every customer is live; a quarter also have s = 2, canceled 5 months
-- ago. Created 13–24 months ago.
CREATE TEMP TABLE bench_subscriptions AS
SELECT c.*, s,
       format('sub_%s_%s_%s', a, k, s) AS subscription,
       CASE WHEN s = 2 THEN 'canceled' WHEN a % 20 = 0 THEN 'past_due' WHEN a % 31 = 0 THEN 'trialing'
            ELSE 'active' END AS status,
       (ARRAY['Starter', 'Pro', 'Team', 'Enterprise'])[1 + (a + s) % 4] AS plan,
       (ARRAY[2900, 9900, 24900, 99900])[1 + (a + s) % 4]::bigint AS unit_amount,
       1 + (a * 7 + k) % 10 AS base_quantity,
       now() - make_interval(days => 395 + (a * 13 + s) % 330) AS created_at
FROM bench_customers c, generate_series(1, 2) AS s
WHERE s = 1 OR (a + k) % 4 = 0;

-- Month m of the last year (0 = twelve months ago, 12 = this month): the seats then, which
-- change every four months or so. Canceled subscriptions end after month 6.
CREATE TEMP TABLE bench_months AS
SELECT b.*, m,
       b.base_quantity + ((a + s + m) / 4) % 3 AS quantity,
       b.base_quantity + ((a + s + m - 1) / 4) % 3 AS quantity_before,
       (b.base_quantity + ((a + s + m) / 4) % 3) * b.unit_amount AS mrr
FROM bench_subscriptions b, generate_series(0, 12) AS m
WHERE s = 1 OR m <= 6;

INSERT INTO billing.stripe_subscriptions (tenant_id, account_id, stripe_customer_id, stripe_subscription_id, status,
                                          plan_name, mrr_cents, currency, quantity, current_period_start,
                                          current_period_end, cancel_at_period_end, canceled_at, ended_at,
                                          default_payment_method, created_at, source_created)
SELECT '{t}', stripe_account, customer, subscription, status, plan,
       CASE WHEN status = 'canceled' THEN 0 ELSE mrr END, currency, quantity,
       CASE WHEN status <> 'canceled' THEN now() - make_interval(days => a % 28) END,
       CASE WHEN status <> 'canceled' THEN now() - make_interval(days => a % 28) + interval '1 month' END,
       status = 'active' AND a % 25 = 0,
       CASE WHEN status = 'canceled' THEN now() - interval '5 months' END,
       CASE WHEN status = 'canceled' THEN now() - interval '5 months' END,
       'pm_' || a || '_' || k, created_at, 1
FROM bench_months WHERE m = CASE WHEN s = 1 THEN 12 ELSE 6 END;
INSERT INTO billing.subscription_items (tenant_id, account_id, stripe_item_id, stripe_subscription_id, price_id,
                                        product_id, quantity, unit_amount, currency, interval, interval_count,
                                        usage_type, current_period_start, current_period_end)
SELECT '{t}', stripe_account, 'si_' || a || '_' || k || '_' || s, subscription,
       'price_' || lower(plan) || '_' || currency, 'prod_' || lower(plan), quantity, unit_amount, currency,
       'month', 1, 'licensed', now() - make_interval(days => a % 28),
       now() - make_interval(days => a % 28) + interval '1 month'
FROM bench_months WHERE m = CASE WHEN s = 1 THEN 12 ELSE 6 END;

-- Change history: the backfill's baseline, seat changes over the year, churn of the
-- canceled ones, the move to past_due. History tables are stored in time order, as the sync
-- worker appends them, so one account's rows lie on many pages.
INSERT INTO billing.subscription_changes (tenant_id, account_id, stripe_subscription_id, stripe_customer_id,
                                          changed_at, source, movement, status_before, status_after, plan_before,
                                          plan_after, quantity_before, quantity_after, mrr_before_cents,
                                          mrr_after_cents, currency)
SELECT '{t}', stripe_account, subscription, customer, created_at, 'backfill', 'new', NULL, 'active', NULL, plan,
       NULL, quantity, 0, mrr, currency
FROM bench_months WHERE m = 0
UNION ALL
SELECT '{t}', stripe_account, subscription, customer, now() - make_interval(months => 12 - m, days => 3 + a % 25),
       'event', CASE WHEN quantity > quantity_before THEN 'expansion' ELSE 'contraction' END, 'active',
       'active', plan, plan, quantity_before, quantity, quantity_before * unit_amount, mrr, currency
FROM bench_months WHERE m >= 1 AND quantity <> quantity_before
UNION ALL
SELECT '{t}', stripe_account, subscription, customer, now() - interval '5 months', 'event', 'churn', 'active',
       'canceled', plan, plan, quantity, quantity, mrr, 0, currency
FROM bench_months WHERE s = 2 AND m = 6
UNION ALL
SELECT '{t}', stripe_account, subscription, customer, now() - interval '2 days', 'event', 'unchanged', 'active',
       'past_due', plan, plan, quantity, quantity, mrr, mrr, currency
FROM bench_months WHERE status = 'past_due' AND m = 12
ORDER BY 5;

-- One invoice a month per subscription: the past-due ones' latest is open after two failed
-- attempts, one account in fifty had an uncollectible one, one in ten invoices was paid on
-- the retry.
CREATE TEMP TABLE bench_invoices AS
SELECT i.*,
       CASE invoice_status WHEN 'paid' THEN CASE WHEN retried THEN 2 ELSE 1 END
                           WHEN 'open' THEN 2 WHEN 'uncollectible' THEN 4 ELSE 0 END AS attempts
FROM (SELECT bm.*, format('in_%s_%s_%s_%s', a, k, s, m) AS invoice,
             now() - make_interval(months => 12 - m, days => a % 28) - interval '1 hour' AS invoice_created,
             CASE WHEN m = 12 AND status = 'past_due' THEN 'open'
                  WHEN m = 11 AND a % 50 = 0 THEN 'uncollectible'
                  WHEN m = 12 AND a % 97 = 0 THEN 'void'
                  ELSE 'paid' END AS invoice_status,
             (a + m) % 10 = 0 AS retried
      FROM bench_months bm WHERE m >= 1) AS i;

INSERT INTO billing.stripe_invoices (tenant_id, account_id, stripe_customer_id, stripe_invoice_id,
                                     stripe_subscription_id, number, amount_cents, amount_paid, amount_remaining,
                                     total, currency, status, billing_reason, collection_method, paid_at,
                                     attempt_count, next_payment_attempt, period_start, period_end,
                                     hosted_invoice_url, created_at, source_created)
SELECT '{t}', stripe_account, customer, invoice, subscription,
       upper(left(md5(customer), 8)) || '-' || lpad((s * 100 + m)::text, 4, '0'),
       mrr, CASE WHEN invoice_status = 'paid' THEN mrr ELSE 0 END,
       CASE WHEN invoice_status IN ('open', 'uncollectible') THEN mrr ELSE 0 END, mrr, currency, invoice_status,
       'subscription_cycle', 'charge_automatically',
       CASE WHEN invoice_status = 'paid' THEN invoice_created + (attempts - 1) * interval '3 days' + interval '1 hour' END,
       attempts, CASE WHEN invoice_status = 'open' THEN now() + interval '2 days' END,
       invoice_created - interval '1 month', invoice_created,
       'https://invoice.stripe.com/i/' || invoice, invoice_created, 1
FROM bench_invoices ORDER BY invoice_created;
INSERT INTO billing.invoice_lines (tenant_id, account_id, stripe_invoice_id, line_id, stripe_subscription_id,
                                   price_id, description, amount, currency, quantity, period_start, period_end)
SELECT '{t}', stripe_account, invoice, 'il_' || substr(invoice, 4) || '_1', subscription,
       'price_' || lower(plan) || '_' || currency, quantity || ' × ' || plan, mrr, currency, quantity,
       invoice_created - interval '1 month', invoice_created
FROM bench_invoices
UNION ALL
SELECT '{t}', stripe_account, invoice, 'il_' || substr(invoice, 4) || '_2', NULL, NULL, 'Usage overage',
       1000 + (a % 50) * 100, currency, 1, invoice_created - interval '1 month', invoice_created
FROM bench_invoices WHERE m % 3 = 0
ORDER BY 12, 4;
INSERT INTO billing.payment_attempts (tenant_id, account_id, charge_id, stripe_customer_id, payment_intent_id,
                                      stripe_invoice_id, attempted_at, amount, currency, outcome, failure_code,
                                      failure_message, attempt_number, source_created)
SELECT '{t}', stripe_account, 'ch_' || substr(invoice, 4) || '_' || n, customer, 'pi_' || substr(invoice, 4),
       invoice, LEAST(invoice_created + interval '1 hour' + (n - 1) * interval '3 days', now() - interval '1 minute'),
       mrr, currency, CASE WHEN invoice_status = 'paid' AND n = attempts THEN 'succeeded' ELSE 'failed' END,
       CASE WHEN invoice_status = 'paid' AND n = attempts THEN NULL
            ELSE (ARRAY['card_declined', 'insufficient_funds', 'expired_card'])[1 + (a + n) % 3] END,
       CASE WHEN invoice_status = 'paid' AND n = attempts THEN NULL
            ELSE (ARRAY['Your card was declined.', 'Your card has insufficient funds.',
                        'Your card has expired.'])[1 + (a + n) % 3] END,
       n, 1
FROM bench_invoices, generate_series(1, attempts) AS n
ORDER BY 7;
INSERT INTO billing.invoice_payments (tenant_id, account_id, invoice_payment_id, stripe_invoice_id, payment_intent_id,
                                      status, source_created)
SELECT '{t}', stripe_account, 'inpay_' || substr(invoice, 4), invoice, 'pi_' || substr(invoice, 4),
       CASE WHEN invoice_status = 'paid' THEN 'paid' ELSE 'open' END, 1
FROM bench_invoices WHERE attempts > 0
ORDER BY invoice_created;

-- The risk engine's side: links, MRR, billing health, signals (open on the open invoices,
-- resolved on the retried ones).
INSERT INTO risk.links (tenant_id, stripe_customer_id, stripe_account_id, account_id, csm_user_id, version)
SELECT '{t}', customer, stripe_account, account_id, 'csm-' || (a % 50), 1 FROM bench_customers;
INSERT INTO risk.customers (tenant_id, stripe_customer_id, stripe_account_id, default_payment_method, delinquent,
                            source_occurred_at)
SELECT '{t}', customer, stripe_account, 'pm_' || a || '_' || k, a % 20 = 0, 1 FROM bench_customers;
INSERT INTO risk.subscriptions (tenant_id, stripe_subscription_id, stripe_customer_id, status, mrr, currency,
                                cancel_at_period_end, source_occurred_at)
SELECT tenant_id, stripe_subscription_id, stripe_customer_id, status, mrr_cents, currency, cancel_at_period_end, 1
FROM billing.stripe_subscriptions WHERE tenant_id = '{t}';
INSERT INTO risk.health (tenant_id, account_id, score, band, components, computed_at, version)
SELECT '{t}', 'acc-' || lpad(a::text, 5, '0'),
       CASE WHEN a % 20 = 0 THEN 55 ELSE 90 + a % 10 END,
       CASE WHEN a % 20 = 0 THEN 'watch' ELSE 'healthy' END,
       (CASE WHEN a % 20 = 0 THEN '[{{"kind": "payment_failed", "points": 30}}]' ELSE '[]' END)::jsonb, now(), 1
FROM generate_series(1, {n}) AS a;
INSERT INTO risk.signals (id, tenant_id, kind, cause_key, stripe_customer_id, stripe_account_id, account_id,
                          severity, summary, evidence, objects, occurred_at, raised_at, updated_at, resolved_at,
                          resolution, source)
SELECT gen_random_uuid(), '{t}', 'payment_failed', invoice, customer, stripe_account, account_id, 'high',
       'Payment failed (attempt ' || attempts || ')', jsonb_build_object('attempt', attempts), ARRAY[invoice],
       invoice_created + interval '1 hour', invoice_created + interval '1 hour',
       invoice_created + interval '1 hour', CASE WHEN invoice_status = 'paid' THEN invoice_created + interval '3 days' END,
       CASE WHEN invoice_status = 'paid' THEN 'paid' END, 'event'
FROM bench_invoices WHERE invoice_status = 'open' OR (invoice_status = 'paid' AND retried);
"#
    )
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::Text)]
    what: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// One answered (or failed) request.
struct Outcome {
    endpoint: usize,
    status: u16,
    micros: u64,
    body: Option<String>,
}

#[derive(Clone)]
struct Load {
    client: reqwest::Client,
    base: Arc<str>,
    tokens: Arc<Vec<String>>,
    accounts: u64,
    rate: u64,
    slots: Arc<tokio::sync::Semaphore>,
}

impl Load {
    /// `seconds` of requests at `rate`, each timed from its due time. The schedule runs on a
    /// thread of its own with `std::thread::sleep` (tens of µs late at most, where tokio's
    /// timer wheel would add up to 1 ms to every measurement).
    async fn run(&self, seconds: u64, seed: u64) -> Vec<Outcome> {
        let load = self.clone();
        let runtime = tokio::runtime::Handle::current();
        let tasks = tokio::task::spawn_blocking(move || {
            let total = load.rate * seconds;
            let interval = Duration::from_secs_f64(1.0 / load.rate as f64);
            let mut rng = Rng(seed | 1);
            let start = Instant::now() + Duration::from_millis(5);
            (0..total)
                .map(|i| {
                    let due = start + interval.mul_f64(i as f64);
                    std::thread::sleep(due.saturating_duration_since(Instant::now()));
                    let endpoint = (i % 2) as usize;
                    let account = account_id(1 + rng.below(load.accounts));
                    runtime.spawn(load.clone().request(due, endpoint, account, i as usize))
                })
                .collect::<Vec<_>>()
        })
        .await
        .expect("load schedule");
        let mut outcomes = Vec::with_capacity(tasks.len());
        for task in tasks {
            outcomes.push(task.await.expect("request task"));
        }
        outcomes
    }

    /// One request, waiting for a free connection slot first (that wait counts too).
    async fn request(self, due: Instant, endpoint: usize, account: String, n: usize) -> Outcome {
        let url = format!("{}/api/stripe/{}/{account}", self.base, ENDPOINTS[endpoint]);
        let _slot = self.slots.acquire().await;
        let answer = async {
            let resp = self
                .client
                .get(&url)
                .bearer_auth(&self.tokens[n % self.tokens.len()])
                .send()
                .await?;
            let status = resp.status().as_u16();
            let body = resp.text().await?;
            Ok::<_, reqwest::Error>((status, body))
        }
        .await;
        let micros = due.elapsed().as_micros() as u64;
        let (status, body) = match answer {
            Ok((200, _)) => (200, None),
            Ok((status, body)) => (status, Some(format!("{url}: {body}"))),
            Err(e) => (0, Some(format!("{url}: {e}"))),
        };
        Outcome {
            endpoint,
            status,
            micros,
            body,
        }
    }
}

/// Checks that the seeded book reads back as the endpoints shape it.
async fn check_shape(client: &reqwest::Client, base: &str, token: &str) -> anyhow::Result<()> {
    let get = |path: String| async move {
        let resp = client
            .get(format!("{base}{path}"))
            .bearer_auth(token)
            .send()
            .await?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await?;
        anyhow::ensure!(status.is_success(), "{path}: {status} {body}");
        Ok::<_, anyhow::Error>(body)
    };
    // acc-00003 has a USD and a EUR customer: two currencies, more than one page of invoices.
    let mrr = get(format!("/api/stripe/mrr/{}", account_id(3))).await?;
    let currencies = mrr["current"].as_array().map_or(0, Vec::len);
    let months = mrr["movement"]["months"].as_array().map_or(0, Vec::len);
    anyhow::ensure!(
        currencies == 2 && months >= 12,
        "unexpected MRR report: {mrr}"
    );
    let invoices = get(format!("/api/stripe/invoices/{}", account_id(3))).await?;
    let page = invoices["data"].as_array().cloned().unwrap_or_default();
    anyhow::ensure!(
        page.len() == 20
            && invoices["has_more"] == true
            && page
                .iter()
                .all(|i| i["lines"].as_array().is_some_and(|l| !l.is_empty()))
            && page.iter().any(|i| i["payment_attempts"]
                .as_array()
                .is_some_and(|a| !a.is_empty())),
        "unexpected invoice page: {invoices}"
    );
    Ok(())
}

/// What the environment asks for.
struct Options {
    accounts: u64,
    rate: u64,
    seconds: u64,
    warmup: u64,
    connections: usize,
    tokens: u64,
}

/// What one run measured (after the warm-up).
struct Figures {
    /// Microseconds from due time, sorted: every request, then per endpoint.
    all: Vec<u64>,
    per_endpoint: Vec<Vec<u64>>,
    elapsed_secs: f64,
    api_cpu_secs: f64,
    db_cpu_secs: f64,
    /// Busy and total CPU seconds of the machine during the load.
    machine_cpu_secs: (f64, f64),
    rss_mb: f64,
    audited: i64,
}

/// Seeds the book, starts query-api, loads it; the caller drops the database whatever
/// happens here.
async fn run(env: TestEnv, opts: &Options) -> anyhow::Result<Figures> {
    let binary = release_bin("query-api")?;
    // Every schema the read endpoints read, exactly as their owners migrate them.
    for spec in [
        sync_worker::spec(),
        matcher::spec(),
        risk_engine::spec(),
        query_api::spec(),
    ] {
        platform::service::migrate(&spec, &env.common).await?;
    }
    let seeding = Instant::now();
    let mut conn = AsyncPgConnection::establish(&env.common.database.url).await?;
    conn.batch_execute(&book(opts.accounts)).await?;
    // A book synced a while ago: vacuumed and analysed, its pages written out. Without the
    // checkpoint, the one the seed's WAL triggers would run during the load and stall commits.
    conn.batch_execute("VACUUM (ANALYZE)").await?;
    conn.batch_execute("CHECKPOINT").await?;
    let counts: Vec<Count> = diesel_async::RunQueryDsl::load(
        diesel::sql_query(
            "SELECT 'linked customers' AS what, count(*) AS n FROM matching.links WHERE account_id IS NOT NULL \
             UNION ALL SELECT 'subscriptions', count(*) FROM billing.stripe_subscriptions \
             UNION ALL SELECT 'subscription changes', count(*) FROM billing.subscription_changes \
             UNION ALL SELECT 'invoices', count(*) FROM billing.stripe_invoices \
             UNION ALL SELECT 'invoice lines', count(*) FROM billing.invoice_lines \
             UNION ALL SELECT 'payment attempts', count(*) FROM billing.payment_attempts \
             UNION ALL SELECT 'failed attempts', count(*) FROM billing.payment_attempts WHERE outcome = 'failed' \
             UNION ALL SELECT 'signals', count(*) FROM risk.signals",
        ),
        &mut conn,
    )
    .await?;
    println!(
        "book of {} accounts seeded in {:.1} s: {}",
        opts.accounts,
        seeding.elapsed().as_secs_f64(),
        counts
            .iter()
            .map(|c| format!("{} {}", c.n, c.what))
            .collect::<Vec<_>>()
            .join(", ")
    );

    let master = format!(
        "k1:{}",
        base64::engine::general_purpose::STANDARD.encode([42u8; 32])
    );
    let mut api = ServiceProcess::spawn(
        &binary,
        "query_api",
        &env,
        &[
            ("BILLING_JWT_SECRET", JWT_SECRET),
            ("BILLING_MASTER_KEYS", master.as_str()),
            // As measured so far: the test harness's info level would add logging to the load.
            ("BILLING__TELEMETRY__LOG_FILTER", "warn"),
        ],
    );
    api.wait_for_status("/readyz", 200).await;
    let pid = api.pid();

    let keys = TokenKeys::new(JWT_SECRET.as_bytes())?;
    let tokens: Vec<String> = (0..opts.tokens)
        .map(|u| keys.mint(TENANT, &format!("csm-bench-{u:03}"), &[Role::Csm], 3_600))
        .collect::<anyhow::Result<_>>()?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(opts.connections)
        .timeout(Duration::from_secs(10))
        .build()?;
    check_shape(&client, &api.url(""), &tokens[0]).await?;
    let load = Load {
        client,
        base: api.url("").into(),
        tokens: Arc::new(tokens),
        accounts: opts.accounts,
        rate: opts.rate,
        slots: Arc::new(tokio::sync::Semaphore::new(opts.connections)),
    };

    let warm = load.run(opts.warmup, 7).await;
    let (api_cpu, db_cpu, machine) = (
        cpu_seconds(pid),
        backends_cpu_seconds(&mut conn).await?,
        machine_cpu_seconds(),
    );
    let started = Instant::now();
    let outcomes = load.run(opts.seconds, 42).await;
    let elapsed_secs = started.elapsed().as_secs_f64();
    let api_cpu_secs = cpu_seconds(pid) - api_cpu;
    let db_cpu_secs = backends_cpu_seconds(&mut conn).await? - db_cpu;
    let machine_cpu_secs = {
        let now = machine_cpu_seconds();
        (now.0 - machine.0, now.1 - machine.1)
    };
    let rss_mb = proc_status_kb(pid, "VmHWM:") / 1024.0;
    let audited: Vec<Count> = diesel_async::RunQueryDsl::load(
        diesel::sql_query(
            "SELECT 'audit entries' AS what, count(*) AS n FROM integration.audit_log WHERE action LIKE 'billing.%'",
        ),
        &mut conn,
    )
    .await?;
    drop((conn, load));
    // `terminate` panics (after killing it) when the process outlives SIGTERM by 20 s: worth
    // a warning, but it does not change what the load measured.
    match tokio::task::spawn_blocking(move || api.terminate()).await {
        Ok(status) if status.success() => {}
        Ok(status) => eprintln!("warning: query-api exited with {status} after SIGTERM"),
        Err(_) => eprintln!("warning: query-api did not stop within 20 s of SIGTERM (killed)"),
    }

    let failed: Vec<&Outcome> = warm
        .iter()
        .chain(&outcomes)
        .filter(|o| o.status != 200)
        .collect();
    if !failed.is_empty() {
        for o in failed.iter().take(5) {
            eprintln!("answer {}: {}", o.status, o.body.as_deref().unwrap_or(""));
        }
        anyhow::bail!(
            "{} of {} requests were not answered 200",
            failed.len(),
            warm.len() + outcomes.len()
        );
    }

    let sorted = |endpoint: Option<usize>| {
        let mut v: Vec<u64> = outcomes
            .iter()
            .filter(|o| endpoint.is_none_or(|e| o.endpoint == e))
            .map(|o| o.micros)
            .collect();
        v.sort_unstable();
        v
    };
    Ok(Figures {
        all: sorted(None),
        per_endpoint: (0..ENDPOINTS.len()).map(|e| sorted(Some(e))).collect(),
        elapsed_secs,
        api_cpu_secs,
        db_cpu_secs,
        machine_cpu_secs,
        rss_mb,
        audited: audited.first().map_or(0, |c| c.n),
    })
}

impl Figures {
    fn print(&self, opts: &Options) {
        let requests = self.all.len() as f64;
        let achieved = requests / self.elapsed_secs;
        println!(
            "load: {requests} requests in {:.1} s ({achieved:.0}/s of {}/s), {} tokens, ≤ {} in flight; \
             {} audit entries in all",
            self.elapsed_secs, opts.rate, opts.tokens, opts.connections, self.audited
        );
        let series = std::iter::once(("both", &self.all))
            .chain(ENDPOINTS.iter().copied().zip(&self.per_endpoint));
        for (name, sorted) in series {
            println!(
                "latency {name:>8} (from due time): p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, \
                 p99.9 {:.2} ms, max {:.2} ms",
                percentile_ms(sorted, 50.0),
                percentile_ms(sorted, 90.0),
                percentile_ms(sorted, 99.0),
                percentile_ms(sorted, 99.9),
                percentile_ms(sorted, 100.0),
            );
        }
        let (busy, total) = self.machine_cpu_secs;
        println!(
            "CPU per request: query-api {:.2} ms, its Postgres backends {:.2} ms; machine {:.0} % busy \
             during the load ({busy:.1} of {total:.1} cores' seconds: the rest is this generator, the \
             WAL writer and anything else running)",
            self.api_cpu_secs * 1000.0 / requests,
            self.db_cpu_secs * 1000.0 / requests,
            100.0 * busy / total.max(f64::EPSILON),
        );
        println!("query-api peak RSS {:.1} MB", self.rss_mb);
        println!("RESULT api_achieved_rps {achieved:.0}");
        for (name, sorted) in ENDPOINTS.iter().zip(&self.per_endpoint) {
            println!(
                "RESULT api_{name}_p50_ms {:.2}",
                percentile_ms(sorted, 50.0)
            );
            println!(
                "RESULT api_{name}_p99_ms {:.2}",
                percentile_ms(sorted, 99.0)
            );
        }
        println!("RESULT api_p50_ms {:.2}", percentile_ms(&self.all, 50.0));
        println!("RESULT api_rss_mb {:.0}", self.rss_mb);
        println!("RESULT api_p99_ms {:.2}", percentile_ms(&self.all, 99.0));
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let opts = Options {
        accounts: env_or("BENCH_ACCOUNTS", 10_000).max(3),
        rate: env_or("BENCH_RATE", 500).max(1),
        seconds: env_or("BENCH_SECONDS", 20).max(1),
        warmup: env_or("BENCH_WARMUP_SECONDS", 3),
        connections: env_or("BENCH_CONNECTIONS", 32).max(1) as usize,
        tokens: env_or("BENCH_TOKENS", 128).max(1),
    };
    let keep_db = std::env::var("BENCH_KEEP_DB").is_ok_and(|v| v == "1");
    let env = TestEnv::new();
    let mine = TestEnv {
        id: env.id.clone(),
        database: env.database.clone(),
        common: env.common.clone(),
    };
    // On its own task so that a panic (a service that never gets ready) still reaches the
    // clean-up below.
    let opts = Arc::new(opts);
    let outcome = tokio::spawn({
        let opts = opts.clone();
        async move { run(mine, &opts).await }
    })
    .await
    .unwrap_or_else(|panic| Err(anyhow::anyhow!("benchmark panicked: {panic}")));
    if keep_db {
        println!("database kept: {}", env.common.database.url);
    } else {
        env.cleanup(&[]).await;
    }
    // The queues query-api declared under this run's namespace; bounded, since a broker that
    // accepts connections but never answers would otherwise hang the clean-up.
    let broker = Broker::new(env.common.amqp.clone(), query_api::spec().topology);
    let removed = tokio::time::timeout(Duration::from_secs(15), async {
        let deleted = broker.delete_topology().await;
        broker.close().await;
        deleted
    })
    .await;
    if !matches!(removed, Ok(Ok(()))) {
        eprintln!(
            "warning: could not delete the RabbitMQ queues of namespace {}",
            env.common.amqp.namespace
        );
    }
    outcome?.print(&opts);
    Ok(())
}
