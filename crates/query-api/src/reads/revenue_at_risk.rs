//! `GET /api/stripe/revenue-at-risk`: the tenant's MRR on accounts with an open payment signal,
//! per currency, per CSM and per account (with the signal kinds behind it). The figures are
//! the risk engine's (`risk.revenue_at_risk`, `risk.account_signals`); the arithmetic is
//! [`domain::risk::revenue_at_risk`]. `csm_user_id` narrows it to one CSM's accounts.

use actix_web::{web, HttpResponse};
use diesel::sql_types::{Array, BigInt, Nullable, Text};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl as _;
use domain::matching::AccountId;
use domain::money::{Currency, Money, MoneyByCurrency};
use domain::risk::{revenue_at_risk, AccountRisk, SignalKind};
use platform::prepared_sql::prepared_sql;
use serde::Deserialize;

use crate::{
    app::AppState,
    audit,
    auth::{Caller, Role},
    error::ApiError,
};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RevenueQuery {
    /// Only this CSM's accounts.
    pub csm_user_id: Option<String>,
}

#[derive(QueryableByName)]
struct OpenKinds {
    #[diesel(sql_type = Text)]
    account_id: String,
    #[diesel(sql_type = Nullable<Text>)]
    csm_user_id: Option<String>,
    #[diesel(sql_type = Array<Text>)]
    kinds: Vec<String>,
}

#[derive(QueryableByName)]
struct AccountMrr {
    #[diesel(sql_type = Text)]
    account_id: String,
    #[diesel(sql_type = Text)]
    currency: String,
    #[diesel(sql_type = BigInt)]
    mrr: i64,
}

/// Revenue at risk
///
/// The tenant's MRR on accounts with an open payment signal, per currency, per CSM and per
/// account (with the signal kinds behind it). CSM role. Audited.
#[utoipa::path(
    get,
    path = "/api/stripe/revenue-at-risk",
    operation_id = "get_revenue_at_risk",
    tag = "billing",
    params(RevenueQuery),
    responses(
        (status = 200, description = "The tenant's revenue at risk", body = domain::risk::RevenueAtRisk),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthenticated),
        (status = 403, response = crate::openapi::Forbidden),
        (status = 429, response = crate::openapi::RateLimited),
        (status = 503, response = crate::openapi::Unavailable),
    ),
    security(("bearer" = []))
)]
pub async fn show(
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<RevenueQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Csm)?;
    let csm = query
        .csm_user_id
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    if csm.is_some_and(|c| c.len() > 128) {
        return Err(ApiError::BadRequest("csm_user_id is too long".into()));
    }
    let tenant = caller.tenant.as_str();
    let mut conn = state.conn().await?;
    // The CSM is the account's (CSCX is its owner), not the one a signal happened to carry.
    let open: Vec<OpenKinds> = prepared_sql(
        "SELECT s.account_id, a.csm_user_id, array_agg(DISTINCT s.kind ORDER BY s.kind) AS kinds \
         FROM risk.account_signals s \
         LEFT JOIN matching.cscx_accounts a ON a.tenant_id = s.tenant_id AND a.account_id = s.account_id \
         WHERE s.tenant_id = $1 AND s.resolved_at IS NULL AND s.account_id IS NOT NULL \
           AND ($2::text IS NULL OR a.csm_user_id = $2) \
         GROUP BY s.account_id, a.csm_user_id",
    )
    .bind::<Text, _>(tenant)
    .bind::<Nullable<Text>, _>(csm)
    .load(&mut conn)
    .await?;
    let accounts: Vec<String> = open.iter().map(|o| o.account_id.clone()).collect();
    let mrr_rows: Vec<AccountMrr> = prepared_sql(
        "SELECT account_id, currency, mrr FROM risk.revenue_at_risk \
         WHERE tenant_id = $1 AND account_id = ANY($2)",
    )
    .bind::<Text, _>(tenant)
    .bind::<Array<Text>, _>(&accounts)
    .load(&mut conn)
    .await?;
    let report = revenue_at_risk(&to_accounts(open, mrr_rows)?).map_err(ApiError::internal)?;
    audit::record_read(
        &mut conn,
        &caller,
        "billing.revenue_at_risk.read",
        csm,
        serde_json::json!({ "accounts": report.accounts.len() }),
    )
    .await?;
    Ok(HttpResponse::Ok().json(report))
}

/// One entry per open-signal row and one per MRR row; [`revenue_at_risk`] merges entries of
/// the same account (MRR summed, kinds united, the CSM the one given).
fn to_accounts(
    open: Vec<OpenKinds>,
    mrr_rows: Vec<AccountMrr>,
) -> Result<Vec<AccountRisk>, ApiError> {
    let mut accounts: Vec<AccountRisk> = open
        .into_iter()
        .map(|o| AccountRisk {
            account_id: AccountId::new(o.account_id),
            csm_user_id: o.csm_user_id,
            mrr: MoneyByCurrency::new(),
            // A kind this build does not know (a newer risk engine) is not a payment signal
            // it could weigh; skipped rather than failing the report.
            open_signal_kinds: o
                .kinds
                .iter()
                .filter_map(|k| k.parse::<SignalKind>().ok())
                .collect(),
        })
        .collect();
    for row in mrr_rows {
        let currency = Currency::parse(&row.currency).map_err(ApiError::internal)?;
        accounts.push(AccountRisk {
            account_id: AccountId::new(row.account_id),
            csm_user_id: None,
            mrr: MoneyByCurrency::try_sum([Money::new(row.mrr, currency)])
                .map_err(ApiError::internal)?,
            open_signal_kinds: Vec::new(),
        });
    }
    Ok(accounts)
}
