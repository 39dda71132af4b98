//! The audit log on the real database: a read's entry is written at once and commits
//! asynchronously for that one statement only; inside a transaction it falls back to the
//! transaction's own (synchronous) commit.

use diesel::sql_types::{BigInt, Text};
use diesel::QueryableByName;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use domain::TenantId;
use platform::testing::TestEnv;
use query_api::{
    audit,
    auth::{Caller, Role},
};

#[derive(QueryableByName)]
struct Setting {
    #[diesel(sql_type = Text)]
    value: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn synchronous_commit(conn: &mut AsyncPgConnection) -> String {
    diesel::sql_query("SELECT current_setting('synchronous_commit') AS value")
        .get_result::<Setting>(conn)
        .await
        .unwrap()
        .value
}

async fn entries(conn: &mut AsyncPgConnection, action: &str) -> i64 {
    diesel::sql_query(
        "SELECT count(*) AS n FROM integration.audit_log \
         WHERE tenant_id = 'tenant-a' AND actor = 'csm-1' AND action = $1 AND target = 'acct-1' \
           AND detail->>'returned' = '3'",
    )
    .bind::<Text, _>(action)
    .get_result::<Count>(conn)
    .await
    .unwrap()
    .n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reads_entry_commits_without_making_anything_else_asynchronous() {
    let env = TestEnv::new();
    platform::service::migrate(&query_api::spec(), &env.common)
        .await
        .unwrap();
    let mut conn = AsyncPgConnection::establish(&env.common.database.url)
        .await
        .unwrap();
    let caller = Caller {
        tenant: TenantId::try_from("tenant-a").unwrap(),
        user: "csm-1".into(),
        roles: vec![Role::Csm],
    };
    let detail = || serde_json::json!({ "returned": 3 });

    // Outside a transaction: written, and the connection's later commits are synchronous.
    audit::record_read(
        &mut conn,
        &caller,
        "billing.mrr.read",
        Some("acct-1"),
        detail(),
    )
    .await
    .unwrap();
    assert_eq!(entries(&mut conn, "billing.mrr.read").await, 1);
    assert_eq!(synchronous_commit(&mut conn).await, "on");

    // Inside a transaction: the transaction keeps its synchronous commit, and the entry
    // commits (or rolls back) with it.
    conn.transaction::<_, diesel::result::Error, _>(async |conn| {
        audit::record_read(conn, &caller, "alerts.read", Some("acct-1"), detail()).await?;
        assert_eq!(synchronous_commit(conn).await, "on");
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(entries(&mut conn, "alerts.read").await, 1);
    let rolled_back = conn
        .transaction::<(), diesel::result::Error, _>(async |conn| {
            audit::record_read(
                conn,
                &caller,
                "matching.review.read",
                Some("acct-1"),
                detail(),
            )
            .await?;
            Err(diesel::result::Error::RollbackTransaction)
        })
        .await;
    assert!(rolled_back.is_err());
    assert_eq!(entries(&mut conn, "matching.review.read").await, 0);
    drop(conn);
    env.cleanup(&[]).await;
}
