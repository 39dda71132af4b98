//! The account's disputes (chargebacks and inquiries) from `billing.dispute_history`: every
//! one still open, whatever its age, and those closed within [`CLOSED_WINDOW_DAYS`] — what a
//! CSM needs before a call: how much, why, and by when the evidence is due.

use chrono::{DateTime, Duration, Utc};
use diesel::sql_types::{BigInt, Bool, Nullable, Text, Timestamptz};
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use serde::Serialize;

use super::{scope, scoped};

/// How long a closed dispute stays in the list.
pub const CLOSED_WINDOW_DAYS: i64 = 180;
/// Most disputes listed (open ones first).
const MAX_DISPUTES: i64 = 20;

#[derive(Debug, Clone, Serialize, QueryableByName, utoipa::ToSchema)]
pub struct DisputeView {
    #[diesel(sql_type = Text)]
    pub dispute_id: String,
    #[diesel(sql_type = Text)]
    pub stripe_customer_id: String,
    /// The disputed charge.
    #[diesel(sql_type = Text)]
    pub charge_id: String,
    /// Minor units of `currency`.
    #[diesel(sql_type = BigInt)]
    pub amount: i64,
    #[diesel(sql_type = Text)]
    pub currency: String,
    /// Stripe's reason: fraudulent, product_not_received, subscription_canceled, …
    #[diesel(sql_type = Text)]
    pub reason: String,
    /// Stripe's status: warning_needs_response, warning_under_review, warning_closed
    /// (inquiries), needs_response, under_review, won, lost, prevented, charge_refunded.
    #[diesel(sql_type = Text)]
    pub status: String,
    /// Still to be answered or decided.
    #[diesel(sql_type = Bool)]
    pub open: bool,
    /// When the evidence must reach Stripe.
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub evidence_due_by: Option<DateTime<Utc>>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
}

/// Open disputes first, then the recently closed, newest first within each.
pub async fn recent(
    conn: &mut AsyncPgConnection,
    scope: &scope::AccountScope,
) -> diesel::QueryResult<Vec<DisputeView>> {
    scoped(
        format!(
            "SELECT dispute_id, stripe_customer_id, charge_id, amount, currency, reason, status, open, \
                    evidence_due_by, created_at \
             FROM billing.dispute_history \
             WHERE tenant_id = $1 AND {} AND (open OR created_at >= $4) \
             ORDER BY open DESC, created_at DESC, dispute_id LIMIT $5",
            scope::PAIRS
        ),
        scope,
    )
    .bind::<Timestamptz, _>(Utc::now() - Duration::days(CLOSED_WINDOW_DAYS))
    .bind::<BigInt, _>(MAX_DISPUTES)
    .load(conn)
    .await
}
