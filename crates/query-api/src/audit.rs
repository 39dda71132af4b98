//! Audit log of access and changes: who, which tenant, what, when. Never a secret or payload.

use diesel_async::{AsyncPgConnection, RunQueryDsl as _};

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
