//! One account's billing at a glance, for the widget and the chat: health, MRR, the
//! subscriptions with the next invoice date, open signals, recent failed payments, unpaid
//! invoices, disputes and the worst dunning stage, read in a handful of queries. No audit entry here:
//! each caller records its own read.

use chrono::{DateTime, Duration, Utc};
use diesel::sql_types::{BigInt, Integer, Nullable, Text, Timestamptz};
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use platform::prepared_sql::prepared_sql;
use serde::Serialize;

use super::{customer, disputes, scope, scoped, signals, subscriptions};
use crate::error::ApiError;

/// How far back "recent failed payments" look.
pub const FAILED_WINDOW_DAYS: i64 = 90;
/// Most failed attempts listed.
const MAX_FAILED: i64 = 20;

#[derive(Debug, Clone, Serialize, QueryableByName)]
pub struct FailedAttempt {
    #[diesel(sql_type = Text)]
    pub charge_id: String,
    #[diesel(sql_type = Text)]
    pub stripe_customer_id: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub stripe_invoice_id: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    pub attempted_at: DateTime<Utc>,
    #[diesel(sql_type = BigInt)]
    pub amount: i64,
    #[diesel(sql_type = Text)]
    pub currency: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub failure_code: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub failure_message: Option<String>,
}

/// An open invoice with money still owed after a failed attempt or its due date.
#[derive(Debug, Clone, Serialize, QueryableByName)]
pub struct UnpaidInvoice {
    #[diesel(sql_type = Text)]
    pub stripe_invoice_id: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub number: Option<String>,
    #[diesel(sql_type = Text)]
    pub currency: String,
    #[diesel(sql_type = BigInt)]
    pub amount_remaining: i64,
    #[diesel(sql_type = Integer)]
    pub attempt_count: i32,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub due_date: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub next_payment_attempt: Option<DateTime<Utc>>,
}

#[derive(QueryableByName)]
struct StageRow {
    #[diesel(sql_type = Nullable<Text>)]
    dunning_stage: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Overview {
    pub account: scope::AccountScope,
    pub health: Option<customer::Health>,
    pub mrr: Vec<customer::CurrencyMrr>,
    pub subscriptions: Vec<subscriptions::SubscriptionRow>,
    /// The earliest renewal among live subscriptions that are not ending.
    pub next_invoice_at: Option<DateTime<Utc>>,
    pub open_signals: Vec<signals::SignalView>,
    /// Failed payment attempts of the last [`FAILED_WINDOW_DAYS`] days, newest first.
    pub failed_payments: Vec<FailedAttempt>,
    pub unpaid_invoices: Vec<UnpaidInvoice>,
    /// Open disputes, then the recently closed.
    pub disputes: Vec<disputes::DisputeView>,
    /// The worst stage over the linked customers: none, retrying, final_attempts,
    /// exhausted, uncollectible.
    pub dunning_stage: String,
}

impl Overview {
    /// Live = not canceled or expired.
    pub fn live_subscriptions(&self) -> impl Iterator<Item = &subscriptions::SubscriptionRow> {
        self.subscriptions
            .iter()
            .filter(|s| !matches!(s.status.as_str(), "canceled" | "incomplete_expired"))
    }

    pub fn open_disputes(&self) -> impl Iterator<Item = &disputes::DisputeView> {
        self.disputes.iter().filter(|d| d.open)
    }
}

/// Live subscription statuses, worst first.
const STATUS_ORDER: &[&str] = &[
    "unpaid",
    "past_due",
    "incomplete",
    "paused",
    "trialing",
    "active",
];

/// Where a subscription status ranks, worst (0) first; unknown ones last.
pub fn status_rank(status: &str) -> usize {
    STATUS_ORDER
        .iter()
        .position(|known| *known == status)
        .unwrap_or(STATUS_ORDER.len())
}

/// Dunning stages from harmless to worst.
const STAGES: &[&str] = &[
    "none",
    "retrying",
    "final_attempts",
    "exhausted",
    "uncollectible",
];

fn worst_stage<'a>(stages: impl IntoIterator<Item = &'a str>) -> String {
    stages
        .into_iter()
        .filter_map(|s| STAGES.iter().position(|known| *known == s))
        .max()
        .map_or("none", |i| STAGES[i])
        .to_owned()
}

fn next_invoice(rows: &[subscriptions::SubscriptionRow]) -> Option<DateTime<Utc>> {
    rows.iter()
        .filter(|s| {
            matches!(s.status.as_str(), "active" | "trialing" | "past_due")
                && !s.cancel_at_period_end
        })
        .filter_map(|s| s.current_period_end)
        .min()
}

pub async fn load(
    conn: &mut AsyncPgConnection,
    scope: &scope::AccountScope,
) -> Result<Overview, ApiError> {
    let health = customer::health(conn, scope).await?;
    let mrr = customer::mrr_by_currency(conn, scope).await?;
    let subscriptions = subscriptions::rows(conn, scope).await?;
    let open_signals = signals::open_for_account(conn, &scope.tenant_id, &scope.account_id).await?;
    let failed_payments: Vec<FailedAttempt> = scoped(
        format!(
            "SELECT charge_id, stripe_customer_id, stripe_invoice_id, attempted_at, amount, currency, \
                    failure_code, failure_message \
             FROM billing.payment_attempt_history \
             WHERE tenant_id = $1 AND {} AND outcome = 'failed' AND attempted_at >= $4 \
             ORDER BY attempted_at DESC, charge_id LIMIT $5",
            scope::PAIRS
        ),
        scope,
    )
    .bind::<Timestamptz, _>(Utc::now() - Duration::days(FAILED_WINDOW_DAYS))
    .bind::<BigInt, _>(MAX_FAILED)
    .load(conn)
    .await?;
    let unpaid_invoices: Vec<UnpaidInvoice> = scoped(
        format!(
            "SELECT stripe_invoice_id, number, currency, amount_remaining, attempt_count, due_date, \
                    next_payment_attempt \
             FROM billing.invoice_history \
             WHERE tenant_id = $1 AND {} AND status = 'open' AND amount_remaining > 0 \
               AND (attempt_count > 0 OR due_date < now()) \
             ORDER BY created_at DESC, stripe_invoice_id LIMIT 20",
            scope::PAIRS
        ),
        scope,
    )
    .load(conn)
    .await?;
    let stages: Vec<StageRow> = prepared_sql(
        "SELECT dunning_stage FROM billing.payment_patterns \
         WHERE tenant_id = $1 AND (account_id, stripe_customer_id) IN \
               (SELECT a, c FROM unnest($2::text[], $3::text[]) AS pairs(a, c))",
    )
    .bind::<Text, _>(&scope.tenant_id)
    .bind::<diesel::sql_types::Array<Text>, _>(&scope.stripe_accounts)
    .bind::<diesel::sql_types::Array<Text>, _>(&scope.stripe_customers)
    .load(conn)
    .await?;
    let disputes = disputes::recent(conn, scope).await?;
    Ok(Overview {
        next_invoice_at: next_invoice(&subscriptions),
        dunning_stage: worst_stage(stages.iter().filter_map(|s| s.dunning_stage.as_deref())),
        account: scope.clone(),
        health,
        mrr,
        subscriptions,
        open_signals,
        failed_payments,
        unpaid_invoices,
        disputes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_dunning_stage_wins() {
        assert_eq!(worst_stage([]), "none");
        assert_eq!(worst_stage(["retrying", "none"]), "retrying");
        assert_eq!(
            worst_stage(["exhausted", "final_attempts", "odd"]),
            "exhausted"
        );
        assert_eq!(worst_stage(["uncollectible", "retrying"]), "uncollectible");
    }
}
