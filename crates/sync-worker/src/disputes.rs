//! Disputes (`charge.dispute.*`, `/v1/disputes`) into `billing.disputes`, announced as
//! `DisputeChanged` when their state changes.
//!
//! Stripe's dispute names no customer: it is the disputed charge's. Backfill and refetches
//! read disputes with `expand[]=charge`, which names it; a webhook carries the charge as an
//! id, resolved from the payment attempts we hold (and, when even that is unknown, by the
//! caller fetching the charge).

use std::collections::HashMap;

use diesel_async::AsyncPgConnection;
use stripe_api::stripe_shared::Dispute;

use crate::facts;
use crate::rows::{self, DisputeRowError, Scope};
use crate::store;
use crate::subscriptions::Source;

#[derive(Debug, thiserror::Error)]
pub enum DisputeWriteError {
    #[error(transparent)]
    Row(#[from] DisputeRowError),
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
}

/// The customers of the disputes' charges we can name without asking Stripe: the expanded
/// charge's, else the stored attempt's. Keyed by charge id.
pub async fn known_customers(
    conn: &mut AsyncPgConnection,
    scope: &Scope,
    disputes: &[Dispute],
) -> Result<HashMap<String, String>, diesel::result::Error> {
    let mut known: HashMap<String, String> = disputes
        .iter()
        .filter_map(|d| Some((rows::dispute_charge(d), rows::dispute_charge_customer(d)?)))
        .collect();
    let unknown: Vec<String> = disputes
        .iter()
        .map(rows::dispute_charge)
        .filter(|c| !known.contains_key(c))
        .collect();
    let unknown: Vec<&str> = unknown.iter().map(String::as_str).collect();
    known.extend(
        store::charge_customers(conn, &scope.tenant_id, &scope.account_id, &unknown).await?,
    );
    Ok(known)
}

/// Maps the disputes, stores them newer-only and queues a `DisputeChanged` for each whose
/// state changed and whose customer is known; returns how many changed.
pub async fn store(
    conn: &mut AsyncPgConnection,
    scope: &Scope,
    disputes: &[Dispute],
    customers: &HashMap<String, String>,
    source: &Source,
) -> Result<usize, DisputeWriteError> {
    let rows = disputes
        .iter()
        .map(|d| {
            let customer = customers.get(&rows::dispute_charge(d)).cloned();
            rows::dispute_row(scope, d, customer, source.created)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let changed = store::disputes(conn, &rows).await?;
    let mut out = Vec::with_capacity(changed.len());
    for row in &changed {
        match facts::dispute(row, source) {
            Some(fact) => out.push(fact),
            None => tracing::warn!(dispute = %row.dispute_id, charge = %row.charge_id,
                "dispute stored without a customer: its charge names none"),
        }
    }
    facts::enqueue(conn, &out).await?;
    Ok(changed.len())
}
