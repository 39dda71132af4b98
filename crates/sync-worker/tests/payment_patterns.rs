//! FR-4 `billing.payment_patterns`: every column for a handful of hand-made customers (the
//! expected numbers are worked out by hand next to each fixture), and failed attempts in the
//! last 30 days equal to the Stripe fake's truth after a real backfill.

use std::collections::BTreeMap;

use diesel::sql_types::{BigInt, Double, Integer, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use platform::{db, testing::TestEnv};
use secrecy::SecretString;
use stripe_api::{ApiConfig, StripeApi};
use stripe_fake::{FakeConfig, FakeServer, SeedOptions, Truth};
use sync_worker::{backfill, rows::Scope};

#[derive(Debug, diesel::QueryableByName)]
struct Pattern {
    #[diesel(sql_type = Text)]
    tenant_id: String,
    #[diesel(sql_type = Text)]
    stripe_customer_id: String,
    #[diesel(sql_type = Nullable<Double>)]
    on_time_rate: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    avg_days_late: Option<f64>,
    #[diesel(sql_type = BigInt)]
    paid_invoices: i64,
    #[diesel(sql_type = BigInt)]
    failed_attempts_30d: i64,
    #[diesel(sql_type = BigInt)]
    failed_attempts_90d: i64,
    #[diesel(sql_type = BigInt)]
    open_invoices: i64,
    #[diesel(sql_type = Text)]
    dunning_stage: String,
}

/// What one customer's row must say.
#[derive(Debug, Clone, Copy)]
struct Want {
    on_time_rate: Option<f64>,
    avg_days_late: Option<f64>,
    paid_invoices: i64,
    failed_30d: i64,
    failed_90d: i64,
    open_invoices: i64,
    stage: &'static str,
}

const NOTHING: Want = Want {
    on_time_rate: None,
    avg_days_late: None,
    paid_invoices: 0,
    failed_30d: 0,
    failed_90d: 0,
    open_invoices: 0,
    stage: "none",
};

fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => (a - b).abs() < 1e-9,
        _ => false,
    }
}

impl Want {
    fn differs(&self, got: &Pattern) -> bool {
        !close(self.on_time_rate, got.on_time_rate)
            || !close(self.avg_days_late, got.avg_days_late)
            || self.paid_invoices != got.paid_invoices
            || self.failed_30d != got.failed_attempts_30d
            || self.failed_90d != got.failed_attempts_90d
            || self.open_invoices != got.open_invoices
            || self.stage != got.dunning_stage
    }
}

/// An invoice row; timestamps are SQL literals (`'2026-01-10Z'` or `now() + …`) so the
/// fixtures read like the comments that explain them.
struct Invoice {
    tenant: &'static str,
    customer: &'static str,
    status: &'static str,
    amount: i64,
    remaining: i64,
    due: &'static str,
    paid: &'static str,
    created: &'static str,
    attempts: i32,
    next_attempt: &'static str,
    deleted: &'static str,
}

const INVOICE: Invoice = Invoice {
    tenant: "tenant-a",
    customer: "",
    status: "paid",
    amount: 1000,
    remaining: 0,
    due: "NULL",
    paid: "NULL",
    created: "'2026-01-01Z'",
    attempts: 1,
    next_attempt: "NULL",
    deleted: "NULL",
};

async fn insert_invoice(conn: &mut AsyncPgConnection, n: usize, inv: Invoice) {
    diesel::sql_query(format!(
        "INSERT INTO billing.stripe_invoices (tenant_id, account_id, stripe_customer_id,
             stripe_invoice_id, amount_cents, amount_paid, amount_remaining, total, currency,
             status, due_date, paid_at, created_at, attempt_count, next_payment_attempt,
             deleted_at, source_created)
         VALUES ($1, 'acct_1', $2, $3, $4, $4 - $5, $5, $4, 'usd', $6, {}, {}, {}, $7, {}, {}, 0)",
        inv.due, inv.paid, inv.created, inv.next_attempt, inv.deleted
    ))
    .bind::<Text, _>(inv.tenant)
    .bind::<Text, _>(inv.customer)
    .bind::<Text, _>(format!("in_{n}"))
    .bind::<BigInt, _>(inv.amount)
    .bind::<BigInt, _>(inv.remaining)
    .bind::<Text, _>(inv.status)
    .bind::<Integer, _>(inv.attempts)
    .execute(conn)
    .await
    .unwrap();
}

/// A charge attempt `hours_ago` before now (negative = in the future).
async fn insert_attempt(
    conn: &mut AsyncPgConnection,
    n: usize,
    customer: Option<&str>,
    outcome: &str,
    hours_ago: i64,
) {
    diesel::sql_query(
        "INSERT INTO billing.payment_attempts (tenant_id, account_id, charge_id,
             stripe_customer_id, attempted_at, amount, currency, outcome, source_created)
         VALUES ('tenant-a', 'acct_1', $1, $2, now() - make_interval(hours => $3), 1000, 'usd',
                 $4, 0)",
    )
    .bind::<Text, _>(format!("ch_{n}"))
    .bind::<Nullable<Text>, _>(customer)
    .bind::<Integer, _>(i32::try_from(hours_ago).unwrap())
    .bind::<Text, _>(outcome)
    .execute(conn)
    .await
    .unwrap();
}

async fn insert_customer(conn: &mut AsyncPgConnection, tenant: &str, customer: &str) {
    diesel::sql_query(
        "INSERT INTO billing.stripe_customers (tenant_id, account_id, stripe_customer_id,
             source_created) VALUES ($1, 'acct_1', $2, 0)",
    )
    .bind::<Text, _>(tenant)
    .bind::<Text, _>(customer)
    .execute(conn)
    .await
    .unwrap();
}

/// Rows of the view, or of `billing.payment_patterns_at(<as_of>)` when given an SQL instant.
async fn patterns(conn: &mut AsyncPgConnection, as_of: Option<&str>) -> Vec<Pattern> {
    let from = match as_of {
        None => "billing.payment_patterns".to_string(),
        Some(at) => format!("billing.payment_patterns_at({at})"),
    };
    diesel::sql_query(format!(
        "SELECT tenant_id, stripe_customer_id, on_time_rate, avg_days_late, paid_invoices,
                failed_attempts_30d, failed_attempts_90d, open_invoices, dunning_stage
         FROM {from} ORDER BY tenant_id, stripe_customer_id"
    ))
    .load(conn)
    .await
    .unwrap()
}

async fn migrated() -> (TestEnv, db::PgPool) {
    let env = TestEnv::new();
    db::ensure_database(&env.common.database.url).await.unwrap();
    db::migrate(&env.common.database.url, "billing", sync_worker::MIGRATIONS)
        .await
        .unwrap();
    let pool = db::pool(&env.common.database).unwrap();
    (env, pool)
}

const DAY: i64 = 24;

#[tokio::test(flavor = "multi_thread")]
async fn every_column_for_hand_made_customers() {
    let (env, pool) = migrated().await;
    let mut conn = pool.get().await.unwrap();
    let conn = &mut *conn;
    let mut n = 0;
    let mut next = || {
        n += 1;
        n
    };

    // cus_punctual: one invoice paid the day before its due date, one without a due date paid
    // an hour after creation (inside the 24 h grace); a zero invoice paid days later and a
    // draft are not judged. One successful charge. → 2 judged, both on time.
    insert_customer(conn, "tenant-a", "cus_punctual").await;
    for inv in [
        Invoice {
            customer: "cus_punctual",
            due: "'2026-01-10Z'",
            paid: "'2026-01-09Z'",
            ..INVOICE
        },
        Invoice {
            customer: "cus_punctual",
            created: "'2026-02-01T00:00Z'",
            paid: "'2026-02-01T01:00Z'",
            ..INVOICE
        },
        Invoice {
            customer: "cus_punctual",
            amount: 0,
            created: "'2026-03-01Z'",
            paid: "'2026-03-05Z'",
            ..INVOICE
        },
        Invoice {
            customer: "cus_punctual",
            status: "draft",
            remaining: 1000,
            attempts: 0,
            ..INVOICE
        },
    ] {
        insert_invoice(conn, next(), inv).await;
    }
    insert_attempt(conn, next(), Some("cus_punctual"), "succeeded", 5 * DAY).await;

    // cus_late: four judged invoices, three late — by 3 days, 12 hours, and (no due date:
    // deadline = created + 24 h) 2 days — and one early → on_time_rate 1/4, avg_days_late
    // (3 + 0.5 + 2) / 3. One open invoice charged once with a retry scheduled → retrying; a
    // deleted open invoice that would be `exhausted` is ignored.
    // Failed charges 2 d, 20 d, 719 h (just inside 30 d), 31 d, 89 d ago → 30 d: 3, 90 d: 5;
    // not counted: 91 d ago, one an hour in the future, a pending and a successful one.
    insert_customer(conn, "tenant-a", "cus_late").await;
    for inv in [
        Invoice {
            customer: "cus_late",
            due: "'2026-01-10Z'",
            paid: "'2026-01-13Z'",
            ..INVOICE
        },
        Invoice {
            customer: "cus_late",
            due: "'2026-02-10T00:00Z'",
            paid: "'2026-02-10T12:00Z'",
            ..INVOICE
        },
        Invoice {
            customer: "cus_late",
            created: "'2026-03-01Z'",
            paid: "'2026-03-04Z'",
            attempts: 3,
            ..INVOICE
        },
        Invoice {
            customer: "cus_late",
            due: "'2026-04-10Z'",
            paid: "'2026-04-01Z'",
            ..INVOICE
        },
        Invoice {
            customer: "cus_late",
            status: "open",
            remaining: 1000,
            attempts: 1,
            next_attempt: "now() + interval '3 days'",
            ..INVOICE
        },
        Invoice {
            customer: "cus_late",
            status: "open",
            remaining: 1000,
            attempts: 5,
            deleted: "now()",
            ..INVOICE
        },
    ] {
        insert_invoice(conn, next(), inv).await;
    }
    for (outcome, hours_ago) in [
        ("failed", 2 * DAY),
        ("failed", 20 * DAY),
        ("failed", 30 * DAY - 1),
        ("failed", 31 * DAY),
        ("failed", 89 * DAY),
        ("failed", 91 * DAY),
        ("failed", -1),
        ("pending", DAY),
        ("succeeded", DAY),
    ] {
        insert_attempt(conn, next(), Some("cus_late"), outcome, hours_ago).await;
    }

    // cus_final: two open invoices, one on its 3rd attempt with another scheduled
    // (final_attempts beats the other's retrying); nothing paid yet. Three failures this week;
    // a failure without a customer is nobody's.
    insert_customer(conn, "tenant-a", "cus_final").await;
    for attempts in [3, 1] {
        insert_invoice(
            conn,
            next(),
            Invoice {
                customer: "cus_final",
                status: "open",
                remaining: 2000,
                amount: 2000,
                attempts,
                next_attempt: "now() + interval '1 day'",
                ..INVOICE
            },
        )
        .await;
    }
    for hours_ago in [DAY, 3 * DAY, 6 * DAY] {
        insert_attempt(conn, next(), Some("cus_final"), "failed", hours_ago).await;
    }
    insert_attempt(conn, next(), None, "failed", DAY).await;

    // cus_exhausted: an open invoice whose retries are over (4 attempts, none scheduled)
    // and a send_invoice one never charged; one invoice paid exactly 1 day after its due date.
    insert_customer(conn, "tenant-a", "cus_exhausted").await;
    for inv in [
        Invoice {
            customer: "cus_exhausted",
            status: "open",
            remaining: 1000,
            attempts: 4,
            ..INVOICE
        },
        Invoice {
            customer: "cus_exhausted",
            status: "open",
            remaining: 1000,
            attempts: 0,
            due: "now() + interval '10 days'",
            ..INVOICE
        },
        Invoice {
            customer: "cus_exhausted",
            due: "'2026-05-01Z'",
            paid: "'2026-05-02Z'",
            ..INVOICE
        },
    ] {
        insert_invoice(conn, next(), inv).await;
    }

    // cus_written_off: an uncollectible invoice still owing outranks an open one in retry.
    insert_customer(conn, "tenant-a", "cus_written_off").await;
    for inv in [
        Invoice {
            customer: "cus_written_off",
            status: "uncollectible",
            remaining: 7000,
            amount: 7000,
            attempts: 4,
            ..INVOICE
        },
        Invoice {
            customer: "cus_written_off",
            status: "open",
            remaining: 1000,
            attempts: 2,
            next_attempt: "now() + interval '2 days'",
            ..INVOICE
        },
    ] {
        insert_invoice(conn, next(), inv).await;
    }

    // cus_quiet: a customer with nothing at all; cus_charge_only: only a failed charge, no
    // customer row yet (events can arrive in any order) — still a row.
    insert_customer(conn, "tenant-a", "cus_quiet").await;
    insert_attempt(conn, next(), Some("cus_charge_only"), "failed", 12).await;

    // The same Stripe id under another tenant is another customer: paid on time, nothing else.
    insert_customer(conn, "tenant-b", "cus_late").await;
    insert_invoice(
        conn,
        next(),
        Invoice {
            tenant: "tenant-b",
            customer: "cus_late",
            due: "'2026-01-10Z'",
            paid: "'2026-01-10Z'",
            ..INVOICE
        },
    )
    .await;

    let want: Vec<(&str, &str, Want)> = vec![
        (
            "tenant-a",
            "cus_charge_only",
            Want {
                failed_30d: 1,
                failed_90d: 1,
                ..NOTHING
            },
        ),
        (
            "tenant-a",
            "cus_exhausted",
            Want {
                on_time_rate: Some(0.0),
                avg_days_late: Some(1.0),
                paid_invoices: 1,
                open_invoices: 2,
                stage: "exhausted",
                ..NOTHING
            },
        ),
        (
            "tenant-a",
            "cus_final",
            Want {
                failed_30d: 3,
                failed_90d: 3,
                open_invoices: 2,
                stage: "final_attempts",
                ..NOTHING
            },
        ),
        (
            "tenant-a",
            "cus_late",
            Want {
                on_time_rate: Some(0.25),
                avg_days_late: Some(5.5 / 3.0),
                paid_invoices: 4,
                failed_30d: 3,
                failed_90d: 5,
                open_invoices: 1,
                stage: "retrying",
            },
        ),
        (
            "tenant-a",
            "cus_punctual",
            Want {
                on_time_rate: Some(1.0),
                paid_invoices: 2,
                ..NOTHING
            },
        ),
        ("tenant-a", "cus_quiet", NOTHING),
        (
            "tenant-a",
            "cus_written_off",
            Want {
                open_invoices: 1,
                stage: "uncollectible",
                ..NOTHING
            },
        ),
        (
            "tenant-b",
            "cus_late",
            Want {
                on_time_rate: Some(1.0),
                paid_invoices: 1,
                ..NOTHING
            },
        ),
    ];

    let got = patterns(conn, None).await;
    let keys: Vec<(&str, &str)> = got
        .iter()
        .map(|p| (p.tenant_id.as_str(), p.stripe_customer_id.as_str()))
        .collect();
    let want_keys: Vec<(&str, &str)> = want.iter().map(|(t, c, _)| (*t, *c)).collect();
    assert_eq!(keys, want_keys, "one row per tenant + account + customer");
    let wrong: Vec<String> = want
        .iter()
        .zip(&got)
        .filter(|((_, _, want), got)| want.differs(got))
        .map(|((t, c, want), got)| format!("{t}/{c}:\n  want {want:?}\n  got  {got:?}"))
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // Two days ago, cus_late's 30-day window was (now − 768 h, now − 48 h]: the failures 48 h,
    // 20 d, 719 h and 31 d ago → 4; its 90-day window also holds 89 d and 91 d ago → 6.
    let earlier = patterns(conn, Some("now() - interval '48 hours'")).await;
    let late = earlier
        .iter()
        .find(|p| p.tenant_id == "tenant-a" && p.stripe_customer_id == "cus_late")
        .unwrap();
    assert_eq!((late.failed_attempts_30d, late.failed_attempts_90d), (4, 6));

    env.cleanup(&[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_attempts_30d_equal_the_fakes_truth_after_a_backfill() {
    let (env, pool) = migrated().await;
    // The fake's clock is the wall clock, like Stripe's.
    let now = chrono::Utc::now().timestamp();
    let fake = FakeServer::start(FakeConfig {
        rate_limit: 0,
        now: Some(now),
        seed: Some(SeedOptions {
            customers: 150,
            seed: 21,
            now: Some(now),
            ..Default::default()
        }),
        ..Default::default()
    })
    .await
    .unwrap();
    let truth: Truth = serde_json::from_value(fake.truth().unwrap()).unwrap();
    let scope = Scope {
        tenant_id: "tenant-a".into(),
        account_id: truth.platform_account.clone(),
    };
    let mut config = ApiConfig::new(fake.base_url(), SecretString::from("rk_test_fake"), false);
    config.requests_per_second = 1000;
    let api = StripeApi::new(config).unwrap();
    let progress = backfill::run(&pool, &api, &scope, uuid::Uuid::new_v4())
        .await
        .unwrap();
    assert_eq!(progress.stage, backfill::Stage::Done);

    let want: BTreeMap<String, (i64, i64)> = truth
        .customers
        .iter()
        .filter(|c| c.account == truth.platform_account)
        .map(|c| {
            let open = c.invoice_counts.get("open").copied().unwrap_or(0);
            (
                c.customer.clone(),
                (c.failed_payment_attempts_30d as i64, open as i64),
            )
        })
        .collect();
    let mut conn = pool.get().await.unwrap();
    // At the truth's own instant: the seed puts retries exactly 30 days minus a second
    // before it, so the view's `now()`, seconds later, would rightly disagree on those.
    let got: BTreeMap<String, (i64, i64)> =
        patterns(&mut conn, Some(&format!("to_timestamp({})", truth.now)))
            .await
            .into_iter()
            .map(|p| {
                (
                    p.stripe_customer_id,
                    (p.failed_attempts_30d, p.open_invoices),
                )
            })
            .collect();
    let recent_failures: i64 = want.values().map(|(failed, _)| failed).sum();
    assert!(
        recent_failures > 0,
        "the seeded book must have failures in the last 30 days for this to prove anything"
    );
    let differ: Vec<String> = want
        .iter()
        .filter(|(customer, want)| got.get(*customer) != Some(want))
        .map(|(customer, want)| {
            format!(
                "{customer}: want (failed_30d, open) {want:?}, got {:?}",
                got.get(customer)
            )
        })
        .collect();
    assert!(differ.is_empty(), "{}", differ.join("\n"));
    assert_eq!(got.len(), want.len(), "one row per customer");

    drop(conn);
    fake.stop().await;
    env.cleanup(&[]).await;
}
