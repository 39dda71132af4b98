//! The short text rendering of each chat answer, from the same data the structured answer
//! carries. Pure functions: dates are formatted "3 Dec 2026", money by
//! [`domain::Money::display`], currencies never summed.

use chrono::{DateTime, Utc};
use domain::money::{Currency, Money};

use crate::reads::{customer::CurrencyMrr, mrr::MrrReport, overview::Overview};

pub fn day(at: DateTime<Utc>) -> String {
    at.format("%-d %b %Y").to_string()
}

pub fn money(minor: i64, currency: &str) -> String {
    match Currency::parse(currency) {
        Ok(currency) => Money::new(minor, currency).display(),
        Err(_) => format!("{minor} {currency}"),
    }
}

/// "card_declined: Your card was declined.", either part alone, or nothing.
pub fn failure_reason(code: Option<&str>, message: Option<&str>) -> String {
    match (code, message) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(one), None) | (None, Some(one)) => one.to_owned(),
        (None, None) => String::new(),
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// "$1,200.00 (ARR $14,400.00)" per currency, joined with " + ".
fn mrr_figures(mrr: &[CurrencyMrr]) -> Option<String> {
    let parts: Vec<String> = mrr
        .iter()
        .filter(|m| m.mrr_cents != 0)
        .map(|m| {
            format!(
                "{} (ARR {})",
                money(m.mrr_cents, &m.currency),
                money(m.arr_cents, &m.currency)
            )
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(" + "))
}

fn status_label(status: &str) -> String {
    status.replace('_', " ")
}

pub fn billing_status(o: &Overview) -> String {
    let mut out = o.account.name.clone();
    match &o.health {
        Some(h) => out.push_str(&format!(
            ": billing health {}/100 ({}).",
            h.score,
            status_label(&h.band)
        )),
        None => out.push_str(": billing health not scored yet."),
    }
    let live: Vec<_> = o.live_subscriptions().collect();
    if live.is_empty() {
        out.push_str(" No live subscriptions.");
    } else {
        let mut counts: Vec<(String, usize)> = Vec::new();
        for s in &live {
            match counts.iter_mut().find(|(status, _)| *status == s.status) {
                Some((_, n)) => *n += 1,
                None => counts.push((s.status.clone(), 1)),
            }
        }
        // Trouble first: "1 past due, 2 active".
        counts.sort_by_key(|(status, _)| crate::reads::overview::status_rank(status));
        let breakdown = counts
            .iter()
            .map(|(status, n)| format!("{n} {}", status_label(status)))
            .collect::<Vec<_>>()
            .join(", ");
        out.push_str(&format!(
            " {}: {breakdown}.",
            plural(live.len(), "subscription", "subscriptions")
        ));
        let ending = live.iter().filter(|s| s.cancel_at_period_end).count();
        if ending > 0 {
            out.push_str(&format!(
                " {} set to cancel at period end.",
                plural(ending, "subscription is", "subscriptions are")
            ));
        }
    }
    if let Some(figures) = mrr_figures(&o.mrr) {
        out.push_str(&format!(" MRR {figures}."));
    }
    if let Some(next) = o.next_invoice_at {
        out.push_str(&format!(" Next invoice {}.", day(next)));
    }
    if o.open_signals.is_empty() {
        out.push_str(" No open billing signals.");
    } else {
        let shown: Vec<String> = o
            .open_signals
            .iter()
            .take(3)
            .map(|s| format!("{} [{}]", s.summary, s.severity))
            .collect();
        out.push_str(&format!(
            " {}: {}{}.",
            plural(o.open_signals.len(), "open signal", "open signals"),
            shown.join("; "),
            if o.open_signals.len() > 3 {
                "; …"
            } else {
                ""
            }
        ));
    }
    let disputes: Vec<String> = o
        .open_disputes()
        .map(|d| {
            let due = d
                .evidence_due_by
                .map(|at| format!(", evidence due {}", day(at)))
                .unwrap_or_default();
            format!(
                "{} ({}, {}{due})",
                money(d.amount, &d.currency),
                status_label(&d.reason),
                status_label(&d.status)
            )
        })
        .collect();
    if !disputes.is_empty() {
        out.push_str(&format!(
            " {}: {}.",
            plural(disputes.len(), "open dispute", "open disputes"),
            disputes.join("; ")
        ));
    }
    if o.dunning_stage != "none" {
        out.push_str(&format!(" Dunning: {}.", status_label(&o.dunning_stage)));
    }
    out
}

pub fn failed_payments(o: &Overview) -> String {
    let name = &o.account.name;
    let window = crate::reads::overview::FAILED_WINDOW_DAYS;
    if o.failed_payments.is_empty() && o.unpaid_invoices.is_empty() {
        return format!(
            "{name}: no failed payments in the last {window} days, and nothing unpaid."
        );
    }
    let mut out = if o.failed_payments.is_empty() {
        format!("{name}: no failed payments in the last {window} days.")
    } else {
        let listed: Vec<String> = o
            .failed_payments
            .iter()
            .take(5)
            .map(|f| {
                let reason =
                    failure_reason(f.failure_code.as_deref(), f.failure_message.as_deref());
                let reason = if reason.is_empty() {
                    reason
                } else {
                    format!(" ({reason})")
                };
                format!(
                    "{} on {}{reason}",
                    money(f.amount, &f.currency),
                    day(f.attempted_at)
                )
            })
            .collect();
        format!(
            "{name}: {} in the last {window} days — {}{}.",
            plural(o.failed_payments.len(), "failed payment", "failed payments"),
            listed.join("; "),
            if o.failed_payments.len() > 5 {
                "; …"
            } else {
                ""
            }
        )
    };
    if !o.unpaid_invoices.is_empty() {
        let listed: Vec<String> = o
            .unpaid_invoices
            .iter()
            .take(3)
            .map(|i| {
                let mut line = format!(
                    "{} {} remaining",
                    i.number.as_deref().unwrap_or(&i.stripe_invoice_id),
                    money(i.amount_remaining, &i.currency)
                );
                if i.attempt_count > 0 {
                    line.push_str(&format!(
                        " after {}",
                        plural(i.attempt_count as usize, "attempt", "attempts")
                    ));
                }
                if let Some(next) = i.next_payment_attempt {
                    line.push_str(&format!(", next retry {}", day(next)));
                } else if let Some(due) = i.due_date {
                    line.push_str(&format!(", due {}", day(due)));
                }
                line
            })
            .collect();
        out.push_str(&format!(
            " {}: {}.",
            plural(o.unpaid_invoices.len(), "unpaid invoice", "unpaid invoices"),
            listed.join("; ")
        ));
    }
    if o.dunning_stage != "none" {
        out.push_str(&format!(" Dunning: {}.", status_label(&o.dunning_stage)));
    }
    out
}

pub fn mrr(name: &str, report: &MrrReport) -> String {
    let Some(figures) = mrr_figures(&report.current) else {
        return format!("{name} has no recurring revenue right now.");
    };
    let live = report
        .subscriptions
        .iter()
        .filter(|s| s.mrr_cents > 0)
        .count();
    let mut out = format!(
        "{name} MRR: {figures} from {}.",
        plural(live, "subscription", "subscriptions")
    );
    // Change over the series, per currency: first month shown vs now.
    let months = &report.movement.months;
    for current in report.current.iter().filter(|m| m.mrr_cents != 0) {
        let series: Vec<_> = months
            .iter()
            .filter(|m| m.currency == current.currency)
            .collect();
        let (Some(first), Some(_)) = (series.first(), series.last()) else {
            continue;
        };
        if series.len() < 2 {
            continue;
        }
        let delta = current.mrr_cents - first.mrr;
        let percent = (first.mrr != 0).then(|| delta as f64 * 100.0 / first.mrr as f64);
        let sign = if delta >= 0 { "+" } else { "" };
        out.push_str(&format!(
            " Since {}: {}{}{}.",
            first.month,
            sign,
            money(delta, &current.currency),
            percent.map_or(String::new(), |p| format!(" ({sign}{p:.0}%)"))
        ));
    }
    out
}
