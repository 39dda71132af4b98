//! What the billing widget shows, worked out before any HTML: every label, badge and amount
//! as a string, so the template only lays them out (and escapes them). Pure: built from the
//! account overview, its recent invoices and its MRR report.

use domain::money::Currency;

use super::chart::{bar_chart, BarChart};
use crate::chat::answer::{day, failure_reason, money};
use crate::reads::{
    disputes::DisputeView, invoices::Invoice, mrr::MrrReport, overview, overview::Overview,
};

/// A label with the CSS class that colours it (`ok`, `warn`, `bad`, `muted`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Badge {
    pub label: String,
    pub class: &'static str,
}

impl Badge {
    fn new(label: impl Into<String>, class: &'static str) -> Self {
        Self {
            label: label.into(),
            class,
        }
    }
}

#[derive(Debug, Clone)]
pub struct HealthBadge {
    pub score: i16,
    pub band: Badge,
}

#[derive(Debug, Clone)]
pub struct AlertRow {
    pub severity: Badge,
    pub kind: String,
    pub summary: String,
    pub since: String,
}

#[derive(Debug, Clone)]
pub struct AttemptRow {
    pub when: String,
    pub amount: String,
    pub outcome: Badge,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct InvoiceRow {
    pub number: String,
    pub created: String,
    pub due: String,
    pub paid: String,
    pub amount: String,
    pub status: Badge,
    /// A failed payment: highlighted.
    pub failed: bool,
    pub attempts: Vec<AttemptRow>,
    pub next_attempt: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisputeRow {
    pub opened: String,
    pub amount: String,
    pub reason: String,
    pub status: Badge,
    /// While the evidence is still to be sent.
    pub evidence_due: Option<String>,
    /// Evidence due within [`URGENT_EVIDENCE_DAYS`] days, or overdue: highlighted.
    pub urgent: bool,
}

/// Evidence due this soon makes a dispute urgent.
pub const URGENT_EVIDENCE_DAYS: i64 = 3;

#[derive(Debug, Clone)]
pub struct WidgetView {
    pub account_id: String,
    pub account_name: String,
    /// The worst live subscription status (`Past due`, `Active`, …).
    pub subscription_status: Badge,
    pub health: Option<HealthBadge>,
    /// Payments OK / failing / dunning.
    pub payment_health: Badge,
    /// `$500.00 / month (ARR $6,000.00)` per currency.
    pub mrr: Vec<String>,
    pub next_invoice: Option<String>,
    pub dunning_stage: Option<String>,
    pub alerts: Vec<AlertRow>,
    pub chart: Option<BarChart>,
    pub invoices: Vec<InvoiceRow>,
    pub disputes: Vec<DisputeRow>,
    pub generated_at: String,
}

fn status_badge(status: &str) -> Badge {
    let class = match status {
        "active" | "paid" | "succeeded" => "ok",
        "trialing" | "open" | "pending" | "draft" | "paused" | "incomplete" => "warn",
        "past_due" | "unpaid" | "uncollectible" | "failed" | "canceled" => "bad",
        _ => "muted",
    };
    Badge::new(title(status), class)
}

/// `past_due` → `Past due`.
fn title(raw: &str) -> String {
    let spaced = raw.replace('_', " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The one the widget shows when an account has several subscriptions.
fn worst_status<'a>(statuses: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    statuses.min_by_key(|s| overview::status_rank(s))
}

fn payment_health(overview: &Overview) -> Badge {
    let failing = !overview.unpaid_invoices.is_empty();
    match (overview.dunning_stage.as_str(), failing) {
        ("none", false) if overview.failed_payments.is_empty() => Badge::new("Payments OK", "ok"),
        ("none", false) => Badge::new("Recovered after a failed payment", "warn"),
        ("none", true) => Badge::new("Payment failing", "bad"),
        (stage, _) => Badge::new(format!("Dunning: {}", title(stage).to_lowercase()), "bad"),
    }
}

fn health_badge(band: &str) -> Badge {
    let class = match band {
        "healthy" => "ok",
        "watch" => "warn",
        _ => "bad",
    };
    Badge::new(title(band), class)
}

fn severity_badge(severity: &str) -> Badge {
    let class = match severity {
        "critical" | "high" => "bad",
        "medium" => "warn",
        _ => "muted",
    };
    Badge::new(title(severity), class)
}

fn invoice_row(invoice: &Invoice) -> InvoiceRow {
    let row = &invoice.invoice;
    let status = row.status.as_deref().unwrap_or("unknown");
    let any_failed = invoice
        .payment_attempts
        .iter()
        .any(|a| a.outcome == "failed");
    let failed =
        status == "uncollectible" || (status == "open" && (any_failed || row.attempt_count > 0));
    InvoiceRow {
        number: row
            .number
            .clone()
            .unwrap_or_else(|| row.stripe_invoice_id.clone()),
        created: day(row.created_at),
        due: row.due_date.map(day).unwrap_or_else(|| "—".into()),
        paid: row.paid_at.map(day).unwrap_or_else(|| "—".into()),
        amount: money(row.total, &row.currency),
        status: if failed && status == "open" {
            Badge::new("Payment failed", "bad")
        } else {
            status_badge(status)
        },
        failed,
        attempts: invoice
            .payment_attempts
            .iter()
            .map(|a| AttemptRow {
                when: a.attempted_at.format("%-d %b %Y %H:%M UTC").to_string(),
                amount: money(a.amount, &a.currency),
                outcome: status_badge(&a.outcome),
                reason: failure_reason(a.failure_code.as_deref(), a.failure_message.as_deref()),
            })
            .collect(),
        next_attempt: row
            .next_payment_attempt
            .filter(|_| status == "open")
            .map(day),
    }
}

fn dispute_badge(status: &str) -> Badge {
    match status {
        "needs_response" => Badge::new("Needs response", "bad"),
        "under_review" => Badge::new("Under review", "warn"),
        "warning_needs_response" => Badge::new("Inquiry: needs response", "bad"),
        "warning_under_review" => Badge::new("Inquiry under review", "warn"),
        "warning_closed" => Badge::new("Inquiry closed", "muted"),
        "won" => Badge::new("Won", "ok"),
        "prevented" => Badge::new("Prevented", "ok"),
        "lost" => Badge::new("Lost", "bad"),
        "charge_refunded" => Badge::new("Refunded", "muted"),
        other => Badge::new(title(other), "muted"),
    }
}

fn dispute_row(dispute: &DisputeView, now: chrono::DateTime<chrono::Utc>) -> DisputeRow {
    let awaiting_evidence = matches!(
        dispute.status.as_str(),
        "needs_response" | "warning_needs_response"
    );
    let due = dispute.evidence_due_by.filter(|_| awaiting_evidence);
    DisputeRow {
        opened: day(dispute.created_at),
        amount: money(dispute.amount, &dispute.currency),
        reason: title(&dispute.reason),
        status: dispute_badge(&dispute.status),
        evidence_due: due.map(day),
        urgent: due.is_some_and(|at| at - now <= chrono::TimeDelta::days(URGENT_EVIDENCE_DAYS)),
    }
}

/// The chart's currency: the one with the most MRR now (amounts are never converted).
fn chart_of(report: &MrrReport) -> Option<BarChart> {
    let currency = report
        .current
        .iter()
        .max_by_key(|m| m.mrr_cents)
        .map(|m| m.currency.clone())
        .or_else(|| report.movement.months.last().map(|m| m.currency.clone()))?;
    let points: Vec<(String, i64)> = report
        .movement
        .months
        .iter()
        .filter(|m| m.currency == currency)
        .map(|m| (m.month.clone(), m.mrr))
        .collect();
    let code = Currency::parse(&currency).ok()?;
    bar_chart(&points, |minor| {
        domain::money::Money::new(minor, code).display()
    })
    .map(|mut chart| {
        chart.currency = currency.to_uppercase();
        chart
    })
}

pub fn build(
    overview: &Overview,
    invoices: &[Invoice],
    report: &MrrReport,
    now: chrono::DateTime<chrono::Utc>,
) -> WidgetView {
    let live: Vec<&str> = overview
        .live_subscriptions()
        .map(|s| s.status.as_str())
        .collect();
    let subscription_status = match worst_status(live.iter().copied()) {
        Some(status) => status_badge(status),
        None => Badge::new("No live subscription", "muted"),
    };
    WidgetView {
        account_id: overview.account.account_id.clone(),
        account_name: overview.account.name.clone(),
        subscription_status,
        health: overview.health.as_ref().map(|h| HealthBadge {
            score: h.score,
            band: health_badge(&h.band),
        }),
        payment_health: payment_health(overview),
        mrr: overview
            .mrr
            .iter()
            .filter(|m| m.mrr_cents != 0)
            .map(|m| {
                format!(
                    "{} / month (ARR {})",
                    money(m.mrr_cents, &m.currency),
                    money(m.arr_cents, &m.currency)
                )
            })
            .collect(),
        next_invoice: overview.next_invoice_at.map(day),
        dunning_stage: (overview.dunning_stage != "none").then(|| title(&overview.dunning_stage)),
        alerts: overview
            .open_signals
            .iter()
            .map(|s| AlertRow {
                severity: severity_badge(&s.severity),
                kind: title(&s.kind),
                summary: s.summary.clone(),
                since: day(s.raised_at),
            })
            .collect(),
        chart: chart_of(report),
        invoices: invoices.iter().map(invoice_row).collect(),
        disputes: overview
            .disputes
            .iter()
            .map(|d| dispute_row(d, now))
            .collect(),
        generated_at: now.format("%-d %b %Y %H:%M UTC").to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_subscription_status_is_shown() {
        assert_eq!(
            worst_status(["active", "past_due", "trialing"].into_iter()),
            Some("past_due")
        );
        assert_eq!(worst_status(["active"].into_iter()), Some("active"));
        assert_eq!(worst_status(std::iter::empty()), None);
    }

    #[test]
    fn statuses_read_as_words_with_a_colour() {
        assert_eq!(status_badge("past_due"), Badge::new("Past due", "bad"));
        assert_eq!(status_badge("paid"), Badge::new("Paid", "ok"));
        assert_eq!(status_badge("trialing"), Badge::new("Trialing", "warn"));
        assert_eq!(status_badge("weird"), Badge::new("Weird", "muted"));
        assert_eq!(health_badge("at_risk"), Badge::new("At risk", "bad"));
        assert_eq!(severity_badge("medium"), Badge::new("Medium", "warn"));
        assert_eq!(title(""), "");
    }

    fn dispute(status: &str, due_in_hours: Option<i64>) -> DisputeView {
        let now = chrono::Utc::now();
        DisputeView {
            dispute_id: "dp_1".into(),
            stripe_customer_id: "cus_1".into(),
            charge_id: "ch_1".into(),
            amount: 12_500,
            currency: "usd".into(),
            reason: "product_not_received".into(),
            status: status.into(),
            open: !matches!(status, "won" | "lost" | "warning_closed"),
            evidence_due_by: due_in_hours.map(|h| now + chrono::TimeDelta::hours(h)),
            created_at: now - chrono::TimeDelta::days(2),
        }
    }

    #[test]
    fn a_dispute_awaiting_evidence_shows_its_due_date_and_is_urgent_when_close() {
        let now = chrono::Utc::now();
        let soon = dispute_row(&dispute("needs_response", Some(48)), now);
        assert_eq!(soon.amount, "$125.00");
        assert_eq!(soon.reason, "Product not received");
        assert_eq!(soon.status, Badge::new("Needs response", "bad"));
        assert!(soon.evidence_due.is_some() && soon.urgent);
        let later = dispute_row(&dispute("needs_response", Some(24 * 10)), now);
        assert!(later.evidence_due.is_some() && !later.urgent);
        let overdue = dispute_row(&dispute("warning_needs_response", Some(-5)), now);
        assert!(overdue.urgent);
        assert_eq!(overdue.status.label, "Inquiry: needs response");
    }

    #[test]
    fn a_dispute_past_the_evidence_stage_has_no_due_date() {
        let now = chrono::Utc::now();
        for (status, badge) in [
            ("under_review", Badge::new("Under review", "warn")),
            ("won", Badge::new("Won", "ok")),
            ("lost", Badge::new("Lost", "bad")),
            ("charge_refunded", Badge::new("Refunded", "muted")),
        ] {
            let row = dispute_row(&dispute(status, Some(24)), now);
            assert_eq!(row.status, badge, "{status}");
            assert_eq!(row.evidence_due, None, "{status}");
            assert!(!row.urgent, "{status}");
        }
    }
}
