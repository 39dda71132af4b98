//! Applying subscriptions: MRR from the domain calculator, newer-only writes under a row
//! lock, and one change-history row per real change (plan, quantity, status or MRR).

use chrono::Utc;
use diesel_async::AsyncPgConnection;
use domain::money::{Currency, Money};
use domain::movement::classify_movement;
use domain::mrr::{subscription_mrr, MrrPolicy};
use stripe_api::stripe_shared::Subscription;

use crate::mrr_input::{subscription_for_mrr, PriceLookup};
use crate::rows::{self, Scope};
use crate::store::{self, ChangeRow, HeldSubscription, SubscriptionWrite};

/// Where a state came from and when it was true at Stripe.
#[derive(Debug, Clone)]
pub struct Source {
    /// `backfill`, `event`, `reconcile` or `refetch`.
    pub kind: &'static str,
    pub event_id: Option<String>,
    /// Unix seconds: the event's `created`, or the time of the API read.
    pub created: i64,
}

impl Source {
    pub fn backfill(fetched_at: i64) -> Self {
        Source {
            kind: "backfill",
            event_id: None,
            created: fetched_at,
        }
    }
}

/// MRR in minor units, or why it could not be computed (stored beside a 0).
/// `as_of` is when the state was true (discount ends are judged then, not at replay).
pub fn mrr_cents(
    sub: &Subscription,
    prices: &impl PriceLookup,
    policy: &MrrPolicy,
    as_of: chrono::DateTime<Utc>,
) -> Result<i64, String> {
    let input = subscription_for_mrr(sub, prices).map_err(|e| e.to_string())?;
    subscription_mrr(&input, policy, as_of)
        .map(|mrr| mrr.monthly.minor)
        .map_err(|e| format!("subscription {}: {e}", sub.id.as_str()))
}

/// The change to record going from `held` to `row`, if anything a CSM cares about changed:
/// status, plan, seats, MRR — or a cancellation requested or withdrawn, which on a
/// subscription already at MRR 0 (unpaid, paused, trialing) changes nothing else.
pub fn change(
    held: Option<&HeldSubscription>,
    row: &rows::SubscriptionRow,
    source: &Source,
    previously_churned: bool,
) -> Option<ChangeRow> {
    if let Some(h) = held {
        let same = h.status == row.status
            && h.plan_name == row.plan_name
            && h.quantity == row.quantity
            && h.mrr_cents == row.mrr_cents
            && h.cancel_at_period_end == row.cancel_at_period_end;
        if same {
            return None;
        }
    }
    let currency: Currency = row.currency.parse().ok()?;
    let before = held
        .filter(|h| h.currency == row.currency)
        .map(|h| Money::new(h.mrr_cents, currency));
    let movement = classify_movement(
        before,
        Money::new(row.mrr_cents, currency),
        previously_churned,
    )
    .map(|m| m.kind.as_str())
    .unwrap_or("unchanged");
    Some(ChangeRow {
        tenant_id: row.tenant_id.clone(),
        account_id: row.account_id.clone(),
        stripe_subscription_id: row.stripe_subscription_id.clone(),
        stripe_customer_id: row.stripe_customer_id.clone(),
        changed_at: rows::ts(source.created).unwrap_or_else(Utc::now),
        source: source.kind.to_owned(),
        event_id: source.event_id.clone(),
        movement: movement.to_owned(),
        status_before: held.map(|h| h.status.clone()),
        status_after: row.status.clone(),
        plan_before: held.and_then(|h| h.plan_name.clone()),
        plan_after: row.plan_name.clone(),
        quantity_before: held.and_then(|h| h.quantity),
        quantity_after: row.quantity,
        mrr_before_cents: held.map_or(0, |h| h.mrr_cents),
        mrr_after_cents: row.mrr_cents,
        currency: row.currency.clone(),
    })
}

/// Writes the subscriptions that are newer than what we hold, records their changes and
/// queues a `subscription.changed` fact for each; returns the changes made.
/// Must run inside the caller's transaction (the held rows are locked until commit).
pub async fn apply(
    conn: &mut AsyncPgConnection,
    scope: &Scope,
    subs: &[Subscription],
    prices: &impl PriceLookup,
    source: Source,
) -> Result<Vec<ChangeRow>, diesel::result::Error> {
    if subs.is_empty() {
        return Ok(Vec::new());
    }
    let policy = MrrPolicy::default();
    let ids: Vec<String> = subs.iter().map(|s| s.id.as_str().to_owned()).collect();
    let held = store::held_subscriptions(conn, &scope.tenant_id, &scope.account_id, &ids).await?;
    let mut writes = Vec::new();
    let mut changes = Vec::new();
    let mut facts = Vec::new();
    for sub in subs {
        let id = sub.id.as_str();
        let before = held.iter().find(|h| h.stripe_subscription_id == id);
        if before.is_some_and(|h| h.deleted || h.source_created > source.created) {
            continue;
        }
        let mrr = mrr_cents(
            sub,
            prices,
            &policy,
            rows::ts(source.created).unwrap_or_else(Utc::now),
        );
        if let Err(reason) = &mrr {
            tracing::warn!(
                subscription = id,
                reason,
                "MRR not computable; stored as 0 with the reason"
            );
        }
        let (row, items) = rows::subscription_rows(scope, sub, mrr, source.created);
        let churned_before = match before {
            Some(h) if h.mrr_cents == 0 && row.mrr_cents > 0 => {
                store::ever_churned(conn, &scope.tenant_id, &scope.account_id, id).await?
            }
            _ => false,
        };
        if let Some(c) = change(before, &row, &source, churned_before) {
            facts.push(crate::facts::subscription(&row, &c, &source));
            changes.push(c);
        }
        writes.push(SubscriptionWrite { row, items });
    }
    store::write_subscriptions(conn, &writes, &changes).await?;
    crate::facts::enqueue(conn, &facts).await?;
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(status: &str, mrr: i64, cancel: bool) -> rows::SubscriptionRow {
        rows::SubscriptionRow {
            tenant_id: "t".into(),
            account_id: "acct".into(),
            stripe_customer_id: "cus_1".into(),
            stripe_subscription_id: "sub_1".into(),
            status: status.into(),
            plan_name: Some("Pro".into()),
            mrr_cents: mrr,
            currency: "usd".into(),
            mrr_error: None,
            quantity: Some(3),
            current_period_start: None,
            current_period_end: None,
            cancel_at_period_end: cancel,
            cancel_at: None,
            canceled_at: None,
            ended_at: None,
            trial_end: None,
            pause_collection: false,
            default_payment_method: None,
            latest_invoice: None,
            created_at: None,
            source_created: 10,
        }
    }

    fn held(r: &rows::SubscriptionRow) -> HeldSubscription {
        HeldSubscription {
            stripe_subscription_id: r.stripe_subscription_id.clone(),
            status: r.status.clone(),
            plan_name: r.plan_name.clone(),
            mrr_cents: r.mrr_cents,
            currency: r.currency.clone(),
            quantity: r.quantity,
            cancel_at_period_end: r.cancel_at_period_end,
            source_created: r.source_created,
            deleted: false,
        }
    }

    fn event() -> Source {
        Source {
            kind: "event",
            event_id: Some("evt_1".into()),
            created: 20,
        }
    }

    #[test]
    fn nothing_a_csm_cares_about_is_no_change() {
        let r = row("active", 5000, false);
        assert!(change(Some(&held(&r)), &r, &event(), false).is_none());
    }

    #[test]
    fn a_cancellation_on_a_subscription_at_mrr_zero_is_a_change() {
        // Unpaid and paused subscriptions count 0 MRR already: only the flag moves, and the
        // risk engine must still hear of it (cancellation requested / withdrawn).
        for status in ["unpaid", "paused", "trialing"] {
            let before = row(status, 0, false);
            let requested = row(status, 0, true);
            let c = change(Some(&held(&before)), &requested, &event(), false)
                .unwrap_or_else(|| panic!("{status}: a cancellation request is a change"));
            assert_eq!(c.movement, "unchanged");
            assert!(change(Some(&held(&requested)), &before, &event(), false).is_some());
        }
    }

    #[test]
    fn status_plan_seats_and_mrr_are_changes() {
        let before = row("active", 5000, false);
        let h = held(&before);
        let mut seats = before.clone();
        seats.quantity = Some(2);
        let mut plan = before.clone();
        plan.plan_name = Some("Basic".into());
        for after in [
            row("past_due", 5000, false),
            row("active", 4000, false),
            seats,
            plan,
        ] {
            assert!(
                change(Some(&h), &after, &event(), false).is_some(),
                "{after:?}"
            );
        }
        assert!(
            change(None, &before, &event(), false).is_some(),
            "first sight"
        );
    }
}
