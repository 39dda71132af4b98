//! The PRD's billing read endpoints, per CSCX account (`customerId` = the CSCX account id),
//! each aggregating over every Stripe customer the matcher linked to that account. They read
//! the owners' views only (`billing.*` read models, `matching.*`, `risk.*`), always within
//! the caller's tenant, and write one audit entry per read.

pub mod cursor;
pub mod customer;
pub mod disputes;
pub mod invoices;
pub mod mrr;
pub mod overview;
pub mod params;
pub mod revenue_at_risk;
pub mod scope;
pub mod signals;
pub mod subscriptions;

use std::collections::HashMap;
use std::hash::Hash;

use actix_web::web;
use diesel::sql_types::{Array, Text};
use diesel_async::AsyncPgConnection;
use platform::prepared_sql::{prepared_sql, PreparedSql};

use crate::{audit, auth::Caller, error::ApiError};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/api/stripe/customer/{customer_id}",
        web::get().to(customer::show),
    )
    .route(
        "/api/stripe/subscriptions/{customer_id}",
        web::get().to(subscriptions::list),
    )
    .route(
        "/api/stripe/invoices/{customer_id}",
        web::get().to(invoices::list),
    )
    .route("/api/stripe/mrr/{customer_id}", web::get().to(mrr::show))
    .route(
        "/api/stripe/signals/{customer_id}",
        web::get().to(signals::list),
    )
    .route(
        "/api/stripe/revenue-at-risk",
        web::get().to(revenue_at_risk::show),
    );
}

/// A query whose `$1`, `$2`, `$3` are the scope's tenant, Stripe accounts and Stripe
/// customers (see [`scope::PAIRS`]); further binds start at `$4`. Prepared once per
/// connection: these run on every read.
pub fn scoped(sql: impl Into<String>, scope: &scope::AccountScope) -> PreparedSql<'_> {
    prepared_sql(sql)
        .bind::<Text, _>(scope.tenant_id.as_str())
        .bind::<Array<Text>, _>(&scope.stripe_accounts)
        .bind::<Array<Text>, _>(&scope.stripe_customers)
}

/// Groups rows by `key`, keeping their order within each group.
pub fn group_by<K: Eq + Hash, T>(rows: Vec<T>, key: impl Fn(&T) -> K) -> HashMap<K, Vec<T>> {
    let mut grouped: HashMap<K, Vec<T>> = HashMap::new();
    for row in rows {
        grouped.entry(key(&row)).or_default().push(row);
    }
    grouped
}

/// Audit entry for a read of `scope`'s billing data: who read which account, how much.
pub async fn audited(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    action: &str,
    scope: &scope::AccountScope,
    mut detail: serde_json::Value,
) -> Result<(), ApiError> {
    if let Some(map) = detail.as_object_mut() {
        map.insert(
            "stripe_customers".into(),
            scope.stripe_customers.len().into(),
        );
    }
    audit::record_read(conn, caller, action, Some(&scope.account_id), detail).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_group_by_invoice_in_order() {
        let grouped = group_by(
            vec![("a", "in_1", 1), ("a", "in_2", 2), ("a", "in_1", 3)],
            |r| (r.0.to_owned(), r.1.to_owned()),
        );
        assert_eq!(
            grouped[&("a".into(), "in_1".into())],
            vec![("a", "in_1", 1), ("a", "in_1", 3)]
        );
        assert_eq!(grouped.len(), 2);
    }
}
