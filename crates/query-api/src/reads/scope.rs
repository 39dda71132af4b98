//! Which Stripe customers a CSCX account's billing view covers: the account must exist in the
//! caller's tenant (matcher's `matching.cscx_accounts`), and its customers are the ones the
//! matcher linked to it, automatically or by hand (`matching.customer_links`). Everything the
//! read endpoints return is filtered by these (Stripe account, Stripe customer) pairs and the
//! tenant, so another tenant's account id is a 404 and never data.

use diesel::sql_types::{Nullable, Text};
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use serde::Serialize;

use crate::{auth::Caller, error::ApiError};

/// Longest CSCX account id accepted in a path.
const MAX_ACCOUNT_ID: usize = 128;

/// Checks a CSCX account id from a path: 1–128 characters, no control characters, no
/// surrounding whitespace.
pub fn parse_account_id(raw: &str) -> Result<&str, ApiError> {
    if raw.is_empty() || raw.chars().count() > MAX_ACCOUNT_ID {
        return Err(ApiError::BadRequest(format!(
            "customerId must be 1–{MAX_ACCOUNT_ID} characters"
        )));
    }
    if raw.trim() != raw || raw.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(
            "customerId must not contain control characters or surrounding whitespace".into(),
        ));
    }
    Ok(raw)
}

/// The CSCX account and the Stripe customers linked to it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AccountScope {
    pub account_id: String,
    pub name: String,
    pub csm_user_id: Option<String>,
    #[serde(skip)]
    pub tenant_id: String,
    /// Parallel arrays for `unnest($n::text[], $m::text[])`: the linked customers' Stripe
    /// accounts and ids.
    #[serde(skip)]
    pub stripe_accounts: Vec<String>,
    #[serde(skip)]
    pub stripe_customers: Vec<String>,
}

impl AccountScope {
    pub fn is_empty(&self) -> bool {
        self.stripe_customers.is_empty()
    }
}

/// SQL that limits a read-model view (aliased or not) to the scope's customers; binds `$2`
/// (Stripe accounts) and `$3` (Stripe customers) after `$1` (tenant).
pub const PAIRS: &str = "(stripe_account_id, stripe_customer_id) IN \
     (SELECT a, c FROM unnest($2::text[], $3::text[]) AS pairs(a, c))";

#[derive(QueryableByName)]
struct AccountRow {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Nullable<Text>)]
    csm_user_id: Option<String>,
}

#[derive(QueryableByName)]
struct PairRow {
    #[diesel(sql_type = Text)]
    stripe_account_id: String,
    #[diesel(sql_type = Text)]
    stripe_customer_id: String,
}

/// Resolves `raw` within the caller's tenant: 400 for a malformed id, 404 for an account the
/// tenant does not have.
pub async fn resolve(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    raw: &str,
) -> Result<AccountScope, ApiError> {
    let account_id = parse_account_id(raw)?;
    let tenant = caller.tenant.as_str();
    let account: Option<AccountRow> = diesel::sql_query(
        "SELECT name, csm_user_id FROM matching.cscx_accounts WHERE tenant_id = $1 AND account_id = $2",
    )
    .bind::<Text, _>(tenant)
    .bind::<Text, _>(account_id)
    .load(conn)
    .await?
    .into_iter()
    .next();
    let account = account.ok_or(ApiError::NotFound)?;
    let pairs: Vec<PairRow> = diesel::sql_query(
        "SELECT stripe_account_id, stripe_customer_id FROM matching.customer_links \
         WHERE tenant_id = $1 AND account_id = $2 AND status IN ('linked', 'manual') \
         ORDER BY stripe_account_id, stripe_customer_id",
    )
    .bind::<Text, _>(tenant)
    .bind::<Text, _>(account_id)
    .load(conn)
    .await?;
    let (stripe_accounts, stripe_customers) = pairs
        .into_iter()
        .map(|p| (p.stripe_account_id, p.stripe_customer_id))
        .unzip();
    Ok(AccountScope {
        account_id: account_id.to_owned(),
        name: account.name,
        csm_user_id: account.csm_user_id,
        tenant_id: tenant.to_owned(),
        stripe_accounts,
        stripe_customers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_are_checked_before_any_query() {
        assert_eq!(parse_account_id("acct-42").unwrap(), "acct-42");
        assert_eq!(parse_account_id("Ünïcødé Ltd").unwrap(), "Ünïcødé Ltd");
        assert!(parse_account_id(&"x".repeat(128)).is_ok());
        for bad in [
            "",
            " acct",
            "acct ",
            "ac\u{0}ct",
            "ac\nct",
            &"x".repeat(129),
        ] {
            assert!(
                matches!(parse_account_id(bad), Err(ApiError::BadRequest(_))),
                "{bad:?} accepted"
            );
        }
    }
}
