//! Which Stripe customers a CSCX account's billing view covers: the account must exist in the
//! caller's tenant (matcher's `matching.cscx_accounts`), and its customers are the ones the
//! matcher linked to it, automatically or by hand (`matching.customer_links`). Everything the
//! read endpoints return is filtered by these (Stripe account, Stripe customer) pairs and the
//! tenant, so another tenant's account id is a 404 and never data.

use diesel::sql_types::{Array, Nullable, Text};
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use platform::prepared_sql::prepared_sql;
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
    #[diesel(sql_type = Array<Text>)]
    stripe_accounts: Vec<String>,
    #[diesel(sql_type = Array<Text>)]
    stripe_customers: Vec<String>,
}

/// The account and its linked customers in one round trip (every read starts here).
const ACCOUNT_WITH_LINKS: &str = "\
    SELECT a.name, a.csm_user_id, \
           COALESCE(array_agg(l.stripe_account_id ORDER BY l.stripe_account_id, l.stripe_customer_id) \
                    FILTER (WHERE l.stripe_customer_id IS NOT NULL), '{}') AS stripe_accounts, \
           COALESCE(array_agg(l.stripe_customer_id ORDER BY l.stripe_account_id, l.stripe_customer_id) \
                    FILTER (WHERE l.stripe_customer_id IS NOT NULL), '{}') AS stripe_customers \
    FROM matching.cscx_accounts a \
    LEFT JOIN matching.customer_links l \
           ON l.tenant_id = a.tenant_id AND l.account_id = a.account_id AND l.status IN ('linked', 'manual') \
    WHERE a.tenant_id = $1 AND a.account_id = $2 \
    GROUP BY a.name, a.csm_user_id";

/// Resolves `raw` within the caller's tenant: 400 for a malformed id, 404 for an account the
/// tenant does not have.
pub async fn resolve(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    raw: &str,
) -> Result<AccountScope, ApiError> {
    let account_id = parse_account_id(raw)?;
    let tenant = caller.tenant.as_str();
    let account: AccountRow = prepared_sql(ACCOUNT_WITH_LINKS)
        .bind::<Text, _>(tenant)
        .bind::<Text, _>(account_id)
        .load(conn)
        .await?
        .into_iter()
        .next()
        .ok_or(ApiError::NotFound)?;
    Ok(AccountScope {
        account_id: account_id.to_owned(),
        name: account.name,
        csm_user_id: account.csm_user_id,
        tenant_id: tenant.to_owned(),
        stripe_accounts: account.stripe_accounts,
        stripe_customers: account.stripe_customers,
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
