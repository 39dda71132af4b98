//! `billingctl sync` against the real broker and database: a backfill request is published
//! once (with confirms) to the sync worker's queue and refused for unknown, foreign or revoked
//! connections; `--progress` ends 0 on a succeeded run with its counts and non-zero with the
//! error of a failed one; `--status` lists runs.

use contracts::{
    v1::{sync_job::Kind, SyncJob},
    Contract as _,
};
use diesel::sql_types::{BigInt, Nullable, Text, Uuid as SqlUuid};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use lapin::options::BasicGetOptions;
use platform::{db, testing::TestEnv};
use prost::Message as _;
use uuid::Uuid;

fn run(env: &TestEnv, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_billingctl"))
        .args(args)
        .env("AMQP_URL", &env.common.amqp.url)
        .env("DATABASE_URL", &env.common.database.url)
        .env("BILLING__AMQP__NAMESPACE", &env.common.amqp.namespace)
        .env(
            "BILLING__AMQP__DELIVERY_LIMIT",
            env.common.amqp.delivery_limit.to_string(),
        )
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A database with the billing and integration schemas.
async fn database(env: &TestEnv) -> AsyncPgConnection {
    let url = &env.common.database.url;
    db::ensure_database(url).await.unwrap();
    db::migrate(url, "billing", sync_worker::MIGRATIONS)
        .await
        .unwrap();
    db::migrate(url, "integration", query_api::MIGRATIONS)
        .await
        .unwrap();
    AsyncPgConnection::establish(url).await.unwrap()
}

/// A stored connection (its sealed secret is never opened here).
async fn connection(conn: &mut AsyncPgConnection, tenant: &str, status: &str) -> Uuid {
    let id = Uuid::new_v4();
    diesel::sql_query(
        "INSERT INTO integration.connections (id, tenant_id, kind, account_id, livemode,
             secret_hint, secret_sealed, secret_key_id, status, created_by)
         VALUES ($1, $2, 'restricted_key', 'acct_' || left(md5($1::text), 10), false,
                 'rk_test_…abcd', '\\x00', 'k1', $3, 'test')",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<Text, _>(tenant)
    .bind::<Text, _>(status)
    .execute(conn)
    .await
    .unwrap();
    id
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_publishes_one_backfill_job_for_a_known_connection() {
    let env = TestEnv::new();
    let mut conn = database(&env).await;
    let active = connection(&mut conn, "tenant-a", "active").await;
    let revoked = connection(&mut conn, "tenant-a", "revoked").await;
    let active_arg = active.to_string();

    let (ok, out) = run(&env, &["sync", "--connection", &active_arg]);
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("for connection {active} (tenant tenant-a")),
        "{out}"
    );

    // Refusals publish nothing.
    let unknown = Uuid::new_v4().to_string();
    let (ok, out) = run(&env, &["sync", "--connection", &unknown]);
    assert!(
        !ok && out.contains(&format!("unknown connection {unknown}")),
        "{out}"
    );
    let (ok, out) = run(
        &env,
        &["sync", "--connection", &active_arg, "--tenant", "tenant-b"],
    );
    assert!(
        !ok && out.contains("does not belong to tenant `tenant-b`"),
        "{out}"
    );
    let (ok, out) = run(&env, &["sync", "--connection", &revoked.to_string()]);
    assert!(!ok && out.contains("is revoked"), "{out}");
    let (ok, out) = run(&env, &["sync", "--connection", "not-a-uuid"]);
    assert!(!ok && out.contains("--connection"), "{out}");

    let broker = platform::amqp::Broker::new(env.common.amqp.clone(), sync_worker::spec().topology);
    let amqp = broker.connection().await.unwrap();
    let channel = amqp.create_channel().await.unwrap();
    let mut jobs = Vec::new();
    while let Some(got) = channel
        .basic_get(
            broker.name(contracts::queues::SYNC_JOBS).into(),
            BasicGetOptions { no_ack: true },
        )
        .await
        .unwrap()
    {
        let properties = got.delivery.properties.clone();
        let job = SyncJob::decode(&*got.delivery.data).unwrap();
        jobs.push((properties, got.delivery.routing_key.to_string(), job));
    }
    assert_eq!(jobs.len(), 1, "exactly one job: {jobs:?}");
    let (properties, routing_key, job) = &jobs[0];
    assert_eq!(job.connection_id, active.to_string());
    assert_eq!(job.kind, Kind::Backfill as i32);
    assert!(Uuid::parse_str(&job.job_id).is_ok());
    let age_ms = chrono::Utc::now().timestamp_millis() - job.requested_at_ms;
    assert!(
        (0..60_000).contains(&age_ms),
        "requested_at_ms {age_ms} ms ago"
    );
    assert_eq!(routing_key, "backfill");
    assert_eq!(
        properties.kind().as_ref().map(|t| t.as_str()),
        Some(SyncJob::TYPE)
    );
    assert_eq!(
        properties.message_id().as_ref().map(|id| id.as_str()),
        Some(job.job_id.as_str())
    );

    drop(conn);
    env.cleanup(&[&broker]).await;
}

/// Inserts a backfill run that started `minutes_ago` and ended now.
#[allow(clippy::too_many_arguments)]
async fn finished_run(
    conn: &mut AsyncPgConnection,
    connection: Uuid,
    status: &str,
    stage: &str,
    done: i64,
    expected: Option<i64>,
    requests: i64,
    error: Option<&str>,
    minutes_ago: i64,
) {
    diesel::sql_query(
        "INSERT INTO billing.sync_runs (id, tenant_id, account_id, connection_id, kind, status,
             stage, objects_done, requests, objects_expected, attempts, error, started_at,
             updated_at, finished_at)
         VALUES (gen_random_uuid(), 'tenant-a', 'acct_1', $1, 'backfill', $2, $3, $4, $5, $6,
                 2, $7, now() - make_interval(mins => $8::int),
                 now() - make_interval(mins => $8::int) + interval '90 seconds',
                 now() - make_interval(mins => $8::int) + interval '90 seconds')",
    )
    .bind::<SqlUuid, _>(connection)
    .bind::<Text, _>(status)
    .bind::<Text, _>(stage)
    .bind::<BigInt, _>(done)
    .bind::<BigInt, _>(requests)
    .bind::<Nullable<BigInt>, _>(expected)
    .bind::<Nullable<Text>, _>(error)
    .bind::<BigInt, _>(minutes_ago)
    .execute(conn)
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn progress_reports_a_finished_run_and_fails_with_the_error_of_a_failed_one() {
    let env = TestEnv::new();
    let mut conn = database(&env).await;
    let good = connection(&mut conn, "tenant-a", "active").await;
    let bad = connection(&mut conn, "tenant-a", "active").await;
    let idle = connection(&mut conn, "tenant-a", "active").await;
    finished_run(
        &mut conn,
        good,
        "succeeded",
        "done",
        1234,
        Some(1200),
        56,
        None,
        3,
    )
    .await;
    // The failed run is the latest of `bad`; an older success must not hide it.
    finished_run(&mut conn, bad, "succeeded", "done", 10, None, 2, None, 60).await;
    finished_run(
        &mut conn,
        bad,
        "failed",
        "invoices",
        345,
        None,
        9,
        Some("Stripe answered 401: the API key was revoked"),
        2,
    )
    .await;

    let (ok, out) = run(
        &env,
        &["sync", "--connection", &good.to_string(), "--progress"],
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("succeeded: 1234 objects (estimate 1200), 56 requests, 2 attempt(s)"),
        "{out}"
    );

    let (ok, out) = run(
        &env,
        &["sync", "--connection", &bad.to_string(), "--progress"],
    );
    assert!(!ok, "{out}");
    assert!(out.contains("failed: 345 objects, 9 requests"), "{out}");
    assert!(
        out.contains(
            "failed at stage `invoices` (attempt 2): Stripe answered 401: the API key was revoked"
        ),
        "{out}"
    );

    let (ok, out) = run(
        &env,
        &["sync", "--connection", &idle.to_string(), "--progress"],
    );
    assert!(!ok && out.contains("no backfill has run"), "{out}");
    let unknown = Uuid::new_v4().to_string();
    let (ok, out) = run(&env, &["sync", "--connection", &unknown, "--progress"]);
    assert!(
        !ok && out.contains(&format!("unknown connection {unknown}")),
        "{out}"
    );

    let (ok, out) = run(&env, &["sync", "--status"]);
    assert!(ok, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("STARTED (UTC)") && lines[0].contains("STATUS"),
        "{out}"
    );
    assert_eq!(
        lines.len(),
        4,
        "header and three runs, newest first:\n{out}"
    );
    assert!(
        lines[1].contains(&bad.to_string()) && lines[1].contains("failed"),
        "{out}"
    );
    assert!(lines[1].contains("Stripe answered 401"), "{out}");
    assert!(
        lines[2].contains(&good.to_string()) && lines[2].contains("1234/1200"),
        "{out}"
    );
    let (ok, out) = run(
        &env,
        &["sync", "--status", "--connection", &good.to_string()],
    );
    assert!(ok && out.lines().count() == 2, "{out}");

    drop(conn);
    env.cleanup(&[]).await;
}
