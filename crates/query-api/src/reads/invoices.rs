//! `GET /api/stripe/invoices/{customerId}`: the account's invoices newest first, across every
//! linked Stripe customer, with their line items and payment attempts (outcome and failure
//! reason). Filters: `status` (comma-separated), `created_gte` / `created_lte`; pages of
//! `limit` (1–100, default 20) with an opaque `starting_after` cursor. Three queries per page
//! whatever its size: invoices, then the page's lines, then its attempts.

use platform::prepared_sql::prepared_sql;
use std::collections::HashMap;

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text, Timestamptz};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl as _;
use serde::{Deserialize, Serialize};

use super::{
    cursor::{Cursor, Page},
    group_by, params, scope, scoped,
};
use crate::{
    app::AppState,
    auth::{Caller, Role},
    error::ApiError,
};

const STATUSES: &[&str] = &["draft", "open", "paid", "uncollectible", "void"];

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InvoiceQuery {
    /// `draft`, `open`, `paid`, `uncollectible`, `void`; several comma-separated.
    pub status: Option<String>,
    /// Created at or after (RFC 3339, or a date = its first instant, UTC).
    pub created_gte: Option<String>,
    /// Created at or before (RFC 3339, or a date = the whole day, UTC).
    pub created_lte: Option<String>,
    /// 1–100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub starting_after: Option<String>,
}

#[derive(Debug, Serialize, QueryableByName, utoipa::ToSchema)]
pub struct InvoiceRow {
    #[diesel(sql_type = Text)]
    pub stripe_invoice_id: String,
    #[diesel(sql_type = Text)]
    pub stripe_customer_id: String,
    #[serde(skip)]
    #[diesel(sql_type = Text)]
    pub stripe_account_id: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub stripe_subscription_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub number: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub status: Option<String>,
    #[diesel(sql_type = Text)]
    pub currency: String,
    #[diesel(sql_type = BigInt)]
    pub amount_due: i64,
    #[diesel(sql_type = BigInt)]
    pub amount_paid: i64,
    #[diesel(sql_type = BigInt)]
    pub amount_remaining: i64,
    #[diesel(sql_type = BigInt)]
    pub total: i64,
    #[diesel(sql_type = Nullable<Text>)]
    pub billing_reason: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub collection_method: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub due_date: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub paid_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Integer)]
    pub attempt_count: i32,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub next_payment_attempt: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub period_start: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub period_end: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    pub hosted_invoice_url: Option<String>,
}

#[derive(Debug, Serialize, QueryableByName, utoipa::ToSchema)]
pub struct LineRow {
    #[serde(skip)]
    #[diesel(sql_type = Text)]
    pub stripe_account_id: String,
    #[serde(skip)]
    #[diesel(sql_type = Text)]
    pub stripe_invoice_id: String,
    #[diesel(sql_type = Text)]
    pub line_id: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub description: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub price_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub stripe_subscription_id: Option<String>,
    #[diesel(sql_type = BigInt)]
    pub amount: i64,
    #[diesel(sql_type = Text)]
    pub currency: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub quantity: Option<i64>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub period_start: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub period_end: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, QueryableByName, utoipa::ToSchema)]
pub struct AttemptRow {
    #[serde(skip)]
    #[diesel(sql_type = Text)]
    pub stripe_account_id: String,
    #[serde(skip)]
    #[diesel(sql_type = Text)]
    pub stripe_invoice_id: String,
    #[diesel(sql_type = Text)]
    pub charge_id: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub payment_intent_id: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    pub attempted_at: DateTime<Utc>,
    #[diesel(sql_type = BigInt)]
    pub amount: i64,
    #[diesel(sql_type = Text)]
    pub currency: String,
    /// succeeded, failed, pending.
    #[diesel(sql_type = Text)]
    pub outcome: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub failure_code: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub failure_message: Option<String>,
    #[diesel(sql_type = Nullable<Integer>)]
    pub attempt_number: Option<i32>,
}

/// An invoice with its line items and payment attempts.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Invoice {
    #[serde(flatten)]
    pub invoice: InvoiceRow,
    pub lines: Vec<LineRow>,
    pub payment_attempts: Vec<AttemptRow>,
}

/// The validated filters of one request.
struct Filters {
    statuses: Option<Vec<String>>,
    from: Option<DateTime<Utc>>,
    through: Option<DateTime<Utc>>,
    limit: i64,
    after: Option<Cursor>,
}

fn filters(query: &InvoiceQuery) -> Result<Filters, ApiError> {
    let from = query
        .created_gte
        .as_deref()
        .map(|raw| params::instant("created_gte", raw, params::Bound::From))
        .transpose()?;
    let through = query
        .created_lte
        .as_deref()
        .map(|raw| params::instant("created_lte", raw, params::Bound::Through))
        .transpose()?;
    if let (Some(from), Some(through)) = (from, through) {
        if from > through {
            return Err(ApiError::BadRequest(
                "created_gte is after created_lte".into(),
            ));
        }
    }
    Ok(Filters {
        statuses: query
            .status
            .as_deref()
            .map(|raw| params::one_of_each("status", raw, STATUSES))
            .transpose()?,
        from,
        through,
        limit: params::limit(query.limit, 20, 100)?,
        after: query
            .starting_after
            .as_deref()
            .map(Cursor::decode)
            .transpose()?,
    })
}

/// Account invoices
///
/// The account's invoices newest first, across every linked Stripe customer, with line items
/// and payment attempts (outcome, failure reason); filtered by status and creation date, in
/// pages with an opaque cursor. CSM role. Audited.
#[utoipa::path(
    get,
    path = "/api/stripe/invoices/{customer_id}",
    operation_id = "list_invoices",
    tag = "billing",
    params(("customer_id" = String, Path, description = "The CSCX account id (1–128 characters)"), InvoiceQuery),
    responses(
        (status = 200, description = "One page of invoices", body = Page<Invoice>),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthenticated),
        (status = 403, response = crate::openapi::Forbidden),
        (status = 404, response = crate::openapi::NotFound),
        (status = 429, response = crate::openapi::RateLimited),
        (status = 503, response = crate::openapi::Unavailable),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<InvoiceQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Csm)?;
    let filters = filters(&query)?;
    let mut conn = state.conn().await?;
    let scope = scope::resolve(&mut conn, &caller, &path).await?;
    let page = load(&mut conn, &scope, &filters).await?;
    super::audited(
        &mut conn,
        &caller,
        "billing.invoices.read",
        &scope,
        serde_json::json!({ "returned": page.data.len() }),
    )
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// The account's `limit` newest invoices with their lines and attempts.
pub async fn recent(
    conn: &mut diesel_async::AsyncPgConnection,
    scope: &scope::AccountScope,
    limit: i64,
) -> Result<Vec<Invoice>, ApiError> {
    let filters = Filters {
        statuses: None,
        from: None,
        through: None,
        limit,
        after: None,
    };
    Ok(load(conn, scope, &filters).await?.data)
}

async fn load(
    conn: &mut diesel_async::AsyncPgConnection,
    scope: &scope::AccountScope,
    filters: &Filters,
) -> Result<Page<Invoice>, ApiError> {
    let invoices: Vec<InvoiceRow> = scoped(
        format!(
        "SELECT stripe_invoice_id, stripe_customer_id, stripe_account_id, stripe_subscription_id, number, status, \
                currency, amount_due, amount_paid, amount_remaining, total, billing_reason, collection_method, \
                created_at, due_date, paid_at, attempt_count, next_payment_attempt, period_start, period_end, \
                hosted_invoice_url \
         FROM billing.invoice_history \
         WHERE tenant_id = $1 AND {pairs} \
           AND ($4::text[] IS NULL OR status = ANY($4)) \
           AND ($5::timestamptz IS NULL OR created_at >= $5) \
           AND ($6::timestamptz IS NULL OR created_at <= $6) \
           AND ($7::timestamptz IS NULL OR (created_at, stripe_invoice_id) < ($7, $8)) \
         ORDER BY created_at DESC, stripe_invoice_id DESC \
         LIMIT $9",
            pairs = scope::PAIRS
        ),
        scope,
    )
    .bind::<Nullable<Array<Text>>, _>(filters.statuses.as_deref())
    .bind::<Nullable<Timestamptz>, _>(filters.from)
    .bind::<Nullable<Timestamptz>, _>(filters.through)
    .bind::<Nullable<Timestamptz>, _>(filters.after.as_ref().map(|c| c.at))
    .bind::<Text, _>(filters.after.as_ref().map(|c| c.id.as_str()).unwrap_or(""))
    .bind::<BigInt, _>(filters.limit + 1)
    .load(conn)
    .await?;
    let page = Page::cut(scope.account_id.clone(), invoices, filters.limit, |last| {
        Cursor {
            at: last.created_at,
            id: last.stripe_invoice_id.clone(),
        }
    });

    let ids: Vec<String> = page
        .data
        .iter()
        .map(|i| i.stripe_invoice_id.clone())
        .collect();
    let mut lines = of_page::<LineRow>(
        conn,
        "line_id, description, price_id, stripe_subscription_id, amount, currency, quantity, period_start, \
         period_end FROM billing.invoice_line_items",
        "stripe_invoice_id, line_id",
        scope,
        &ids,
    )
    .await?;
    let mut attempts = of_page::<AttemptRow>(
        conn,
        "charge_id, payment_intent_id, attempted_at, amount, currency, outcome, failure_code, failure_message, \
         attempt_number FROM billing.payment_attempt_history",
        "attempted_at, charge_id",
        scope,
        &ids,
    )
    .await?;
    Ok(page.map(|invoice| {
        let key = (
            invoice.stripe_account_id.clone(),
            invoice.stripe_invoice_id.clone(),
        );
        Invoice {
            lines: lines.remove(&key).unwrap_or_default(),
            payment_attempts: attempts.remove(&key).unwrap_or_default(),
            invoice,
        }
    }))
}

/// A row that belongs to one invoice of one Stripe account.
trait OfInvoice {
    fn invoice_key(&self) -> (String, String);
}

impl OfInvoice for LineRow {
    fn invoice_key(&self) -> (String, String) {
        (
            self.stripe_account_id.clone(),
            self.stripe_invoice_id.clone(),
        )
    }
}

impl OfInvoice for AttemptRow {
    fn invoice_key(&self) -> (String, String) {
        (
            self.stripe_account_id.clone(),
            self.stripe_invoice_id.clone(),
        )
    }
}

/// The rows of the page's invoices (`columns_from` = "<columns> FROM <view>"), grouped by
/// (Stripe account, invoice).
async fn of_page<T>(
    conn: &mut diesel_async::AsyncPgConnection,
    columns_from: &str,
    order_by: &str,
    scope: &scope::AccountScope,
    ids: &[String],
) -> diesel::QueryResult<HashMap<(String, String), Vec<T>>>
where
    T: QueryableByName<Pg> + OfInvoice + Send + 'static,
{
    let rows: Vec<T> = prepared_sql(format!(
        "SELECT stripe_account_id, stripe_invoice_id, {columns_from} \
         WHERE tenant_id = $1 AND stripe_account_id = ANY($2) AND stripe_invoice_id = ANY($3) \
         ORDER BY {order_by}"
    ))
    .bind::<Text, _>(&scope.tenant_id)
    .bind::<Array<Text>, _>(&scope.stripe_accounts)
    .bind::<Array<Text>, _>(ids)
    .load(conn)
    .await?;
    Ok(group_by(rows, T::invoice_key))
}
#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> InvoiceQuery {
        let text = pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        web::Query::<InvoiceQuery>::from_query(&text)
            .unwrap()
            .into_inner()
    }

    #[test]
    fn filters_are_validated_before_any_query() {
        let ok = filters(&query(&[
            ("status", "open,uncollectible"),
            ("created_gte", "2026-10-01"),
            ("created_lte", "2026-10-31"),
            ("limit", "5"),
        ]))
        .unwrap();
        assert_eq!(ok.statuses.unwrap(), vec!["open", "uncollectible"]);
        assert_eq!(ok.limit, 5);
        assert!(ok.from.unwrap() < ok.through.unwrap());
        for bad in [
            vec![("status", "late")],
            vec![("created_gte", "2026-11-02"), ("created_lte", "2026-11-01")],
            vec![("created_gte", "soon")],
            vec![("limit", "0")],
            vec![("limit", "101")],
            vec![("starting_after", "garbage")],
        ] {
            assert!(
                matches!(filters(&query(&bad)), Err(ApiError::BadRequest(_))),
                "{bad:?} accepted"
            );
        }
        let defaults = filters(&query(&[])).unwrap();
        assert_eq!(defaults.limit, 20);
        assert!(defaults.statuses.is_none() && defaults.after.is_none());
    }
}
