//! Exactly-once effects on top of at-least-once delivery: inside the handler's transaction,
//! record `(consumer, message_id)` in the service's `inbox` table; a message already recorded
//! is skipped. Every service schema has this table (see its first migration).

use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};

/// Records the message; `true` when it is new and should be applied, `false` for a repeat.
/// Call it inside the same transaction as the effects, so both commit or neither does.
pub async fn first_delivery(
    conn: &mut AsyncPgConnection,
    schema: &'static str,
    consumer: &str,
    message_id: &str,
) -> diesel::QueryResult<bool> {
    let inserted = diesel::sql_query(format!(
        "INSERT INTO {schema}.inbox (consumer, message_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"
    ))
    .bind::<Text, _>(consumer)
    .bind::<Text, _>(message_id)
    .execute(conn)
    .await?;
    Ok(inserted == 1)
}

/// SQL for a schema's inbox table, to paste in its first migration.
pub const INBOX_TABLE_SQL: &str = "CREATE TABLE inbox (
    consumer     TEXT NOT NULL,
    message_id   TEXT NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_id)
);";
