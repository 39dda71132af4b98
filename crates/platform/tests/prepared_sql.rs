//! `PreparedSql` against the real Postgres: the statement is prepared once per connection
//! and reused with new binds, where `diesel::sql_query` prepares an unnamed one every time.

use diesel::sql_types::{BigInt, Integer, Text};
use diesel::QueryableByName;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use platform::prepared_sql::prepared_sql;
use platform::testing::TestEnv;

#[derive(QueryableByName, Debug, PartialEq)]
struct Echo {
    #[diesel(sql_type = Text)]
    word: String,
    #[diesel(sql_type = Integer)]
    twice: i32,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

const ECHO: &str = "SELECT $1::text AS word, $2 + $2 AS twice WHERE $1 <> ''";

async fn named_statements(conn: &mut AsyncPgConnection, like: &str) -> i64 {
    diesel::sql_query("SELECT count(*) AS n FROM pg_prepared_statements WHERE statement LIKE $1")
        .bind::<Text, _>(like)
        .get_result::<Count>(conn)
        .await
        .unwrap()
        .n
}

/// A connection to a database of this test's own.
async fn fresh_database() -> (TestEnv, AsyncPgConnection) {
    let env = TestEnv::new();
    platform::db::ensure_database(&env.common.database.url)
        .await
        .unwrap();
    let conn = AsyncPgConnection::establish(&env.common.database.url)
        .await
        .unwrap();
    (env, conn)
}

#[tokio::test]
async fn a_prepared_query_is_parsed_once_per_connection_and_rebound() {
    let (env, mut conn) = fresh_database().await;

    for (word, n) in [("a", 1), ("b", 20), ("c", 300)] {
        let rows: Vec<Echo> = prepared_sql(ECHO)
            .bind::<Text, _>(word)
            .bind::<Integer, _>(n)
            .load(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            rows,
            vec![Echo {
                word: word.into(),
                twice: 2 * n
            }]
        );
    }
    // The `WHERE $1 <> ''` repeat is bound again, so it filters with the same value.
    let none: Vec<Echo> = prepared_sql(ECHO)
        .bind::<Text, _>("")
        .bind::<Integer, _>(1)
        .load(&mut conn)
        .await
        .unwrap();
    assert!(none.is_empty());
    assert_eq!(
        named_statements(&mut conn, "SELECT $1::text AS word%").await,
        1,
        "one named statement, reused for all four calls"
    );

    for n in 0..3 {
        diesel::sql_query("SELECT $1::int AS unprepared_marker")
            .bind::<Integer, _>(n)
            .execute(&mut conn)
            .await
            .unwrap();
    }
    assert_eq!(
        named_statements(&mut conn, "%unprepared_marker%").await,
        0,
        "sql_query is never kept"
    );

    drop(conn);
    env.cleanup(&[]).await;
}

#[tokio::test]
async fn a_placeholder_without_a_bind_fails_the_query_not_the_process() {
    let (env, mut conn) = fresh_database().await;
    let err = prepared_sql("SELECT $1::text AS word, $2 AS twice")
        .bind::<Text, _>("a")
        .load::<Echo>(&mut conn)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("$2 has no bind"), "{err}");
    // The connection is still usable.
    let ok: Vec<Echo> = prepared_sql(ECHO)
        .bind::<Text, _>("z")
        .bind::<Integer, _>(2)
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(ok.len(), 1);
    drop(conn);
    env.cleanup(&[]).await;
}
