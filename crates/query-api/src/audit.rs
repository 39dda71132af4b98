//! Audit log of access and changes: who, which tenant, what, when. Never a secret or payload.
//!
//! A change's entry commits in the change's own transaction ([`record`]). A read's entry
//! ([`record_read`]) is its own one-statement transaction committed asynchronously: the read
//! changed nothing, and waiting for its WAL flush (0.3–3.4 ms on this disk) was the largest
//! single wait of every read. The entry is visible at once and survives a query-api crash;
//! only a Postgres crash within `wal_writer_delay` × 3 (600 ms by default) of the read can
//! lose it.

use diesel::sql_types::{Jsonb, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _, TransactionManager as _};
use platform::prepared_sql::prepared_sql;

use crate::{auth::Caller, schema::audit_log};

#[derive(diesel::Insertable)]
#[diesel(table_name = audit_log)]
struct NewEntry<'a> {
    tenant_id: &'a str,
    actor: &'a str,
    action: &'a str,
    target: Option<&'a str>,
    detail: serde_json::Value,
}

/// Records `action` on `target` by `caller`; call it in the same transaction as the change.
pub async fn record(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    action: &str,
    target: Option<&str>,
    detail: serde_json::Value,
) -> diesel::QueryResult<()> {
    record_by(
        conn,
        caller.tenant.as_str(),
        &caller.user,
        action,
        target,
        detail,
    )
    .await
}

/// Records a change made by someone other than an API caller (e.g. actor `stripe` for a
/// revocation Stripe told us about), in the tenant it affected.
pub async fn record_by(
    conn: &mut AsyncPgConnection,
    tenant_id: &str,
    actor: &str,
    action: &str,
    target: Option<&str>,
    detail: serde_json::Value,
) -> diesel::QueryResult<()> {
    diesel::insert_into(audit_log::table)
        .values(NewEntry {
            tenant_id,
            actor,
            action,
            target,
            detail,
        })
        .execute(conn)
        .await
        .map(|_| ())
}

/// The read entry's statement: `set_config(…, true)` lasts for the statement's implicit
/// transaction, so only this commit skips the flush wait.
const READ_ENTRY: &str = "\
    INSERT INTO integration.audit_log (tenant_id, actor, action, target, detail) \
    SELECT $1, $2, $3, $4, $5 FROM (SELECT set_config('synchronous_commit', 'off', true)) AS async_commit";

/// Records a read of `target` by `caller` (see the module comment for its durability). Inside
/// a transaction it falls back to [`record`], so that transaction's commit stays synchronous.
pub async fn record_read(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    action: &str,
    target: Option<&str>,
    detail: serde_json::Value,
) -> diesel::QueryResult<()> {
    let in_transaction = diesel_async::AnsiTransactionManager::transaction_manager_status_mut(conn)
        .transaction_depth()?
        .is_some();
    if in_transaction {
        return record(conn, caller, action, target, detail).await;
    }
    prepared_sql(READ_ENTRY)
        .bind::<Text, _>(caller.tenant.as_str())
        .bind::<Text, _>(caller.user.as_str())
        .bind::<Text, _>(action)
        .bind::<Nullable<Text>, _>(target)
        .bind::<Jsonb, _>(detail)
        .execute(conn)
        .await
        .map(|_| ())
}
