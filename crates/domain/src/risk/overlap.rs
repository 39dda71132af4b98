//! Signals that describe one trouble from two sides count once in health.
//!
//! A failed renewal raises `dunning_in_progress` on its invoice (retries) and, as the
//! subscription turns `past_due`, `dunning_in_progress` on the subscription: one collection
//! process, seen from the invoice and from the subscription. Both stay open and visible (each
//! resolves on its own cause), but the account's health deducts the process once, at the most
//! severe of the two. Signals of one kind that share a *subject* (for dunning: the
//! subscription being collected) overlap; everything else counts on its own.

use super::{SignalKind, SignalRecord};

/// Kinds whose signals may overlap: the same collection seen from invoice and subscription.
pub const OVERLAPPING_KINDS: [SignalKind; 1] = [SignalKind::DunningInProgress];

/// Keeps, of the open signals of an overlapping kind that share a subject, only the most
/// severe (ties: the earliest raised, then the smallest id, so the choice is stable). Records
/// with no subject, resolved ones and other kinds pass through. Order of the rest is kept.
pub fn without_overlaps(records: Vec<(SignalRecord, Option<String>)>) -> Vec<SignalRecord> {
    use std::collections::HashMap;
    let mut best: HashMap<(SignalKind, String), usize> = HashMap::new();
    for (i, (record, subject)) in records.iter().enumerate() {
        let (Some(subject), true) = (
            subject,
            record.is_open() && OVERLAPPING_KINDS.contains(&record.kind),
        ) else {
            continue;
        };
        let key = (record.kind, subject.clone());
        match best.get(&key) {
            Some(&j) if !stronger(record, &records[j].0) => {}
            _ => {
                best.insert(key, i);
            }
        }
    }
    records
        .into_iter()
        .enumerate()
        .filter(|(i, (record, subject))| match subject {
            Some(subject) if record.is_open() && OVERLAPPING_KINDS.contains(&record.kind) => {
                best.get(&(record.kind, subject.clone())) == Some(i)
            }
            _ => true,
        })
        .map(|(_, (record, _))| record)
        .collect()
}

fn stronger(a: &SignalRecord, b: &SignalRecord) -> bool {
    (
        a.severity,
        std::cmp::Reverse(a.raised_at),
        std::cmp::Reverse(&a.id),
    ) > (
        b.severity,
        std::cmp::Reverse(b.raised_at),
        std::cmp::Reverse(&b.id),
    )
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone as _, Utc};

    use super::*;
    use crate::risk::{CauseKey, Severity};

    fn record(
        id: &str,
        kind: SignalKind,
        severity: Severity,
        minute: u32,
        open: bool,
    ) -> SignalRecord {
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 10, minute, 0).unwrap();
        SignalRecord {
            id: id.into(),
            kind,
            cause_key: CauseKey::from_stored(format!("x:{id}")),
            severity,
            raised_at: at,
            resolved_at: (!open).then_some(at),
        }
    }

    fn ids(records: &[SignalRecord]) -> Vec<&str> {
        records.iter().map(|r| r.id.as_str()).collect()
    }

    #[test]
    fn one_collection_counts_once_at_its_most_severe() {
        let sub = Some("sub_1".to_owned());
        let kept = without_overlaps(vec![
            (
                record(
                    "inv",
                    SignalKind::DunningInProgress,
                    Severity::Medium,
                    0,
                    true,
                ),
                sub.clone(),
            ),
            (
                record(
                    "subr",
                    SignalKind::DunningInProgress,
                    Severity::High,
                    1,
                    true,
                ),
                sub.clone(),
            ),
            (
                record("pf", SignalKind::PaymentFailed, Severity::Medium, 0, true),
                sub.clone(),
            ),
        ]);
        assert_eq!(
            ids(&kept),
            ["subr", "pf"],
            "payment_failed is another kind: it counts"
        );
    }

    #[test]
    fn different_subscriptions_and_missing_subjects_count_on_their_own() {
        let kept = without_overlaps(vec![
            (
                record("a", SignalKind::DunningInProgress, Severity::High, 0, true),
                Some("sub_1".into()),
            ),
            (
                record("b", SignalKind::DunningInProgress, Severity::High, 0, true),
                Some("sub_2".into()),
            ),
            (
                record("c", SignalKind::DunningInProgress, Severity::Low, 0, true),
                None,
            ),
        ]);
        assert_eq!(ids(&kept), ["a", "b", "c"]);
    }

    #[test]
    fn resolved_signals_keep_their_own_fading_deduction() {
        let sub = Some("sub_1".to_owned());
        let kept = without_overlaps(vec![
            (
                record(
                    "old",
                    SignalKind::DunningInProgress,
                    Severity::Critical,
                    0,
                    false,
                ),
                sub.clone(),
            ),
            (
                record(
                    "new",
                    SignalKind::DunningInProgress,
                    Severity::Medium,
                    5,
                    true,
                ),
                sub.clone(),
            ),
        ]);
        assert_eq!(ids(&kept), ["old", "new"]);
    }

    #[test]
    fn ties_pick_the_earliest_then_the_smallest_id_whatever_the_order() {
        let sub = Some("sub_1".to_owned());
        let a = record("a", SignalKind::DunningInProgress, Severity::High, 3, true);
        let b = record("b", SignalKind::DunningInProgress, Severity::High, 1, true);
        let c = record("c", SignalKind::DunningInProgress, Severity::High, 1, true);
        for order in [[&a, &b, &c], [&c, &b, &a], [&b, &a, &c]] {
            let kept =
                without_overlaps(order.iter().map(|r| ((*r).clone(), sub.clone())).collect());
            assert_eq!(ids(&kept), ["b"]);
        }
    }
}
