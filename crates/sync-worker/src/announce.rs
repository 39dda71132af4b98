//! Which bulk writes become facts. A live event announces what it changed; a backfill or a
//! reconciliation re-list writes whole pages, and announcing every row would flood the risk
//! engine at connect time (a 10k-customer book holds ~88,000 invoices, nearly all paid, which
//! raise nothing) and again on every re-run. What must reach it: invoices still owing money
//! (the payment problems a CSM must see on the day Stripe is connected), invoices we held as
//! owing that are settled now (their signals resolve), and only when what the risk engine
//! reads of them changed; and recent failed charges, which carry the failure codes.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use diesel::{ExpressionMethods as _, QueryDsl as _, Queryable};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};

use crate::rows::{AttemptRow, InvoiceRow, InvoiceRows, Scope};
use crate::schema::{payment_attempts, stripe_invoices};
use crate::subscriptions::Source;
use crate::{facts, store};

/// Invoice statuses with money still owed.
const UNSETTLED: [&str; 2] = ["open", "uncollectible"];

/// Failed charges this recent are announced by a backfill.
pub const FAILED_CHARGES_DAYS: i64 = 30;

/// What the risk engine reads of an invoice (`InvoiceUpdated`'s risk-bearing fields).
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct Held {
    pub status: Option<String>,
    pub amount_remaining: i64,
    pub attempt_count: i32,
    pub due_date: Option<DateTime<Utc>>,
    pub paid_at: Option<DateTime<Utc>>,
    pub next_payment_attempt: Option<DateTime<Utc>>,
}

impl Held {
    fn of(row: &InvoiceRow) -> Self {
        Held {
            status: row.status.clone(),
            amount_remaining: row.amount_remaining,
            attempt_count: row.attempt_count,
            due_date: row.due_date,
            paid_at: row.paid_at,
            next_payment_attempt: row.next_payment_attempt,
        }
    }

    fn unsettled(&self) -> bool {
        self.status
            .as_deref()
            .is_some_and(|s| UNSETTLED.contains(&s))
    }
}

/// Whether writing `new` over `held` (what we stored before, if anything) is news for the
/// risk engine.
pub fn invoice_is_news(new: &InvoiceRow, held: Option<&Held>) -> bool {
    let new = Held::of(new);
    match held {
        Some(held) if *held == new => false,
        Some(held) => new.unsettled() || held.unsettled(),
        None => new.unsettled(),
    }
}

/// Whether a backfilled charge is news: a failure of the last [`FAILED_CHARGES_DAYS`] days
/// that we did not hold as failed already (`held` = the outcome we stored, if any).
pub fn attempt_is_news(row: &AttemptRow, held: Option<&str>, now: DateTime<Utc>) -> bool {
    row.outcome == "failed"
        && held != Some("failed")
        && row.attempted_at >= now - TimeDelta::days(FAILED_CHARGES_DAYS)
}

/// The outcomes we hold of these charges, read before they are overwritten.
pub async fn held_outcomes(
    conn: &mut AsyncPgConnection,
    tenant: &str,
    account: &str,
    rows: &[AttemptRow],
) -> diesel::QueryResult<HashMap<String, String>> {
    use payment_attempts as t;
    let ids: Vec<&str> = rows.iter().map(|r| r.charge_id.as_str()).collect();
    let held: Vec<(String, String)> = t::table
        .filter(t::tenant_id.eq(tenant))
        .filter(t::account_id.eq(account))
        .filter(t::charge_id.eq_any(ids))
        .select((t::charge_id, t::outcome))
        .load(conn)
        .await?;
    Ok(held.into_iter().collect())
}

/// Writes a page of invoices and queues the facts of those whose write is news, each
/// announced as of `source_of` it; returns how many were announced.
pub async fn write_invoices(
    conn: &mut AsyncPgConnection,
    scope: &Scope,
    rows: &[InvoiceRows],
    source_of: impl Fn(&InvoiceRow) -> Source,
) -> diesel::QueryResult<usize> {
    let held = held_invoices(conn, scope, rows).await?;
    let written = store::invoices(conn, rows).await?;
    let news: Vec<_> = rows
        .iter()
        .map(|r| &r.invoice)
        .filter(|i| written.contains(&i.stripe_invoice_id))
        .filter(|i| invoice_is_news(i, held.get(&i.stripe_invoice_id)))
        .map(|i| facts::invoice(i, &source_of(i)))
        .collect();
    facts::enqueue(conn, &news).await?;
    Ok(news.len())
}

/// What we hold of these invoices, read before they are overwritten.
async fn held_invoices(
    conn: &mut AsyncPgConnection,
    scope: &Scope,
    rows: &[InvoiceRows],
) -> diesel::QueryResult<HashMap<String, Held>> {
    use stripe_invoices as t;
    let (tenant, account) = (&scope.tenant_id, &scope.account_id);
    let ids: Vec<&str> = rows
        .iter()
        .map(|r| r.invoice.stripe_invoice_id.as_str())
        .collect();
    let held: Vec<(String, Held)> = t::table
        .filter(t::tenant_id.eq(tenant))
        .filter(t::account_id.eq(account))
        .filter(t::stripe_invoice_id.eq_any(ids))
        .select((
            t::stripe_invoice_id,
            (
                t::status,
                t::amount_remaining,
                t::attempt_count,
                t::due_date,
                t::paid_at,
                t::next_payment_attempt,
            ),
        ))
        .load(conn)
        .await?;
    Ok(held.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invoice(status: &str, attempts: i32, remaining: i64) -> InvoiceRow {
        InvoiceRow {
            tenant_id: "t".into(),
            account_id: "acct_1".into(),
            stripe_customer_id: "cus_1".into(),
            stripe_invoice_id: "in_1".into(),
            stripe_subscription_id: Some("sub_1".into()),
            number: None,
            amount_cents: 5000,
            amount_paid: 5000 - remaining,
            amount_remaining: remaining,
            total: 5000,
            currency: "usd".into(),
            status: Some(status.into()),
            billing_reason: None,
            collection_method: None,
            due_date: None,
            paid_at: None,
            attempt_count: attempts,
            next_payment_attempt: None,
            period_start: None,
            period_end: None,
            hosted_invoice_url: None,
            created_at: None,
            source_created: 1,
        }
    }

    #[test]
    fn a_first_seen_invoice_is_news_only_while_it_owes_money() {
        assert!(invoice_is_news(&invoice("open", 2, 5000), None));
        assert!(invoice_is_news(&invoice("uncollectible", 4, 5000), None));
        for settled in ["paid", "void", "draft"] {
            assert!(!invoice_is_news(&invoice(settled, 1, 0), None), "{settled}");
        }
    }

    #[test]
    fn an_unchanged_invoice_is_never_news() {
        let open = invoice("open", 2, 5000);
        assert!(!invoice_is_news(&open, Some(&Held::of(&open))));
    }

    #[test]
    fn a_change_is_news_when_either_side_owes_money() {
        let open = invoice("open", 1, 5000);
        let retried = invoice("open", 2, 5000);
        let paid = invoice("paid", 2, 0);
        assert!(invoice_is_news(&retried, Some(&Held::of(&open))));
        assert!(invoice_is_news(&paid, Some(&Held::of(&retried))), "settles");
        let mut later = paid.clone();
        later.paid_at = Some(Utc::now());
        assert!(
            !invoice_is_news(&later, Some(&Held::of(&paid))),
            "paid stays paid"
        );
    }

    #[test]
    fn only_recent_failed_charges_not_known_as_failed_are_news() {
        let now = Utc::now();
        let charge = |outcome: &str, days_ago: i64| AttemptRow {
            tenant_id: "t".into(),
            account_id: "acct_1".into(),
            charge_id: "ch_1".into(),
            stripe_customer_id: Some("cus_1".into()),
            payment_intent_id: None,
            stripe_invoice_id: None,
            attempted_at: now - TimeDelta::days(days_ago),
            amount: 5000,
            currency: "usd".into(),
            outcome: outcome.into(),
            failure_code: None,
            failure_message: None,
            attempt_number: None,
            source_created: 1,
        };
        assert!(attempt_is_news(&charge("failed", 3), None, now));
        assert!(attempt_is_news(&charge("failed", 3), Some("pending"), now));
        assert!(
            !attempt_is_news(&charge("failed", 3), Some("failed"), now),
            "known"
        );
        assert!(!attempt_is_news(
            &charge("failed", FAILED_CHARGES_DAYS + 1),
            None,
            now
        ));
        assert!(!attempt_is_news(&charge("succeeded", 1), None, now));
        assert!(!attempt_is_news(&charge("pending", 1), None, now));
    }
}
