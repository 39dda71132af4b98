//! What Stripe (the fake) holds, as a [`Snapshot`], and the signals its state calls for.

use std::collections::BTreeSet;

use stripe_fake::store::Book;

use crate::compare::{opt, OpenSignal, Snapshot};

/// The objects a CSM's view is built from, with the fields that view depends on.
pub fn snapshot(book: &Book) -> Snapshot {
    let mut s = Snapshot::default();
    for c in book.customers.values() {
        s.insert(
            "customer",
            &c.id,
            [
                ("email", opt(c.email.as_ref())),
                ("name", opt(c.name.as_ref())),
                ("delinquent", c.delinquent.to_string()),
                (
                    "default_payment_method",
                    opt(c.invoice_settings.default_payment_method.as_ref()),
                ),
            ],
        );
    }
    for sub in book.subscriptions.values() {
        s.insert(
            "subscription",
            &sub.id,
            [
                ("status", sub.status.to_owned()),
                ("cancel_at_period_end", sub.cancel_at_period_end.to_string()),
                ("customer", sub.customer.clone()),
            ],
        );
        for item in &sub.items.data {
            s.insert(
                "subscription_item",
                &item.id,
                [
                    ("subscription", sub.id.clone()),
                    ("price", item.price.id.clone()),
                    ("quantity", opt(item.quantity)),
                ],
            );
        }
    }
    for inv in book.invoices.values() {
        s.insert(
            "invoice",
            &inv.id,
            [
                ("status", inv.status.to_owned()),
                ("amount_paid", inv.amount_paid.to_string()),
                ("amount_remaining", inv.amount_remaining.to_string()),
                ("attempt_count", inv.attempt_count.to_string()),
            ],
        );
    }
    for ch in book.charges.values() {
        s.insert(
            "charge",
            &ch.id,
            [
                ("outcome", ch.status.to_owned()),
                ("failure_code", opt(ch.failure_code.as_ref())),
            ],
        );
    }
    // Default cards: the ones whose expiry the risk engine watches (the worker keeps
    // only those, plus whatever events bring).
    let defaults: std::collections::HashSet<&str> = book
        .customers
        .values()
        .filter_map(|c| c.invoice_settings.default_payment_method.as_deref())
        .collect();
    for pm in book.payment_methods.values() {
        if defaults.contains(pm.id.as_str()) {
            s.insert(
                "payment_method",
                &pm.id,
                [
                    ("customer", opt(pm.customer.as_ref())),
                    ("exp_month", pm.card.exp_month.to_string()),
                    ("exp_year", pm.card.exp_year.to_string()),
                ],
            );
        }
    }
    for dp in book.disputes.values() {
        s.insert("dispute", &dp.id, [("status", dp.status.to_owned())]);
    }
    s
}

/// Signal kinds whose open set follows from Stripe's current state alone (the others
/// depend on time or on history: card expiry windows, downgrades, churn).
pub const STATE_SIGNAL_KINDS: [&str; 5] = [
    "payment_failed",
    "dunning_in_progress",
    "invoice_uncollectible",
    "cancellation_requested",
    "dispute_opened",
];

const OPEN_DISPUTE: [&str; 4] = [
    "needs_response",
    "warning_needs_response",
    "under_review",
    "warning_under_review",
];

/// The signals of [`STATE_SIGNAL_KINDS`] that Stripe's state calls for, written from
/// the product's rules (docs/risk-model.md) independently of the risk engine's code.
pub fn expected_open_signals(book: &Book) -> BTreeSet<OpenSignal> {
    let mut open = BTreeSet::new();
    let mut add = |kind: &str, cause: String| open.insert((kind.to_owned(), cause));
    for inv in book.invoices.values() {
        let owing = inv.amount_remaining > 0;
        if inv.status == "open" && inv.attempt_count >= 1 && owing {
            add("payment_failed", format!("invoice:{}", inv.id));
            add("dunning_in_progress", format!("invoice:{}", inv.id));
        }
        if inv.status == "uncollectible" && owing {
            add("invoice_uncollectible", format!("invoice:{}", inv.id));
        }
    }
    for sub in book.subscriptions.values() {
        if matches!(sub.status, "past_due" | "unpaid") {
            add("dunning_in_progress", format!("subscription:{}", sub.id));
        }
        if sub.cancel_at_period_end && !matches!(sub.status, "canceled" | "incomplete_expired") {
            add("cancellation_requested", format!("subscription:{}", sub.id));
        }
    }
    for dp in book.disputes.values() {
        if OPEN_DISPUTE.contains(&dp.status) {
            add("dispute_opened", format!("dispute:{}", dp.id));
        }
    }
    open
}

/// Ids of the events Stripe created at or after `since` (unix seconds) about objects
/// the sync worker keeps: each must end up applied, by webhook or by reconciliation.
pub fn events_since(book: &Book, since: i64) -> Vec<String> {
    const KEPT: [&str; 9] = [
        "customer",
        "subscription",
        "invoice",
        "charge",
        "payment_method",
        "price",
        "product",
        "coupon",
        "dispute",
    ];
    book.events
        .values()
        .filter(|e| e.created >= since)
        .filter(|e| {
            e.data.object["object"]
                .as_str()
                .is_some_and(|o| KEPT.contains(&o))
        })
        .map(|e| e.id.clone())
        .collect()
}
