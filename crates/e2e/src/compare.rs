//! Comparing what Stripe holds with what we hold, object by object and field by field.
//!
//! Both sides are reduced to a [`Snapshot`]: for every object (kind and id) the fields a
//! CSM's view depends on, rendered as text. [`diff`] reports every object missing on our
//! side, every object we hold that Stripe does not, and every field that differs.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Field name → value as text (`∅` for none).
pub type Fields = BTreeMap<&'static str, String>;

/// Renders an optional value the same way on both sides.
pub fn opt<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "∅".to_owned(), |v| v.to_string())
}

/// Objects by (kind, id).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Snapshot {
    objects: BTreeMap<(&'static str, String), Fields>,
}

impl Snapshot {
    pub fn insert<const N: usize>(
        &mut self,
        kind: &'static str,
        id: impl Into<String>,
        fields: [(&'static str, String); N],
    ) {
        self.objects
            .insert((kind, id.into()), fields.into_iter().collect());
    }

    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Objects per kind, for the report.
    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        let mut counts = BTreeMap::new();
        for (kind, _) in self.objects.keys() {
            *counts.entry(*kind).or_default() += 1;
        }
        counts
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// Stripe has it, we do not.
    Missing { kind: &'static str, id: String },
    /// We hold it, Stripe does not.
    Unexpected { kind: &'static str, id: String },
    /// Both have it; one field differs.
    Differs {
        kind: &'static str,
        id: String,
        field: &'static str,
        stripe: String,
        held: String,
    },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::Missing { kind, id } => write!(f, "{kind} {id}: missing"),
            Mismatch::Unexpected { kind, id } => write!(f, "{kind} {id}: not in Stripe"),
            Mismatch::Differs {
                kind,
                id,
                field,
                stripe,
                held,
            } => write!(f, "{kind} {id}: {field} is {held}, Stripe says {stripe}"),
        }
    }
}

/// Every difference between Stripe's objects and ours. A field only one side names is a
/// difference too (`∅` on the other), so a projection that forgets a field cannot pass.
pub fn diff(stripe: &Snapshot, held: &Snapshot) -> Vec<Mismatch> {
    let mut out = Vec::new();
    for ((kind, id), want) in &stripe.objects {
        let Some(have) = held.objects.get(&(*kind, id.clone())) else {
            out.push(Mismatch::Missing {
                kind,
                id: id.clone(),
            });
            continue;
        };
        let names: BTreeSet<&&'static str> = want.keys().chain(have.keys()).collect();
        for field in names {
            let none = "∅".to_owned();
            let (s, h) = (
                want.get(*field).unwrap_or(&none),
                have.get(*field).unwrap_or(&none),
            );
            if s != h {
                out.push(Mismatch::Differs {
                    kind,
                    id: id.clone(),
                    field,
                    stripe: s.clone(),
                    held: h.clone(),
                });
            }
        }
    }
    for (kind, id) in held.objects.keys() {
        if !stripe.objects.contains_key(&(*kind, id.clone())) {
            out.push(Mismatch::Unexpected {
                kind,
                id: id.clone(),
            });
        }
    }
    out
}

/// An open signal: kind and cause key (`payment_failed`, `invoice:in_1`).
pub type OpenSignal = (String, String);

/// Signals that should be open and are not, and open ones that should not be.
pub fn signal_diff(
    expected: &BTreeSet<OpenSignal>,
    open: &BTreeSet<OpenSignal>,
) -> (Vec<OpenSignal>, Vec<OpenSignal>) {
    (
        expected.difference(open).cloned().collect(),
        open.difference(expected).cloned().collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invoice(status: &str, attempts: i64) -> Snapshot {
        let mut s = Snapshot::default();
        s.insert(
            "invoice",
            "in_1",
            [
                ("status", status.to_owned()),
                ("attempt_count", attempts.to_string()),
            ],
        );
        s
    }

    #[test]
    fn equal_snapshots_have_no_mismatch() {
        assert!(diff(&invoice("paid", 1), &invoice("paid", 1)).is_empty());
        assert!(diff(&Snapshot::default(), &Snapshot::default()).is_empty());
    }

    #[test]
    fn every_differing_field_is_reported() {
        let found = diff(&invoice("paid", 2), &invoice("open", 1));
        assert_eq!(found.len(), 2);
        assert_eq!(
            found[1].to_string(),
            "invoice in_1: status is open, Stripe says paid"
        );
    }

    #[test]
    fn missing_and_unexpected_objects_are_reported() {
        let mut held = Snapshot::default();
        held.insert("invoice", "in_2", [("status", "paid".into())]);
        let found = diff(&invoice("paid", 1), &held);
        assert_eq!(
            found,
            [
                Mismatch::Missing {
                    kind: "invoice",
                    id: "in_1".into()
                },
                Mismatch::Unexpected {
                    kind: "invoice",
                    id: "in_2".into()
                }
            ]
        );
    }

    #[test]
    fn a_field_only_one_side_names_is_a_difference() {
        let mut held = invoice("paid", 1);
        held.insert(
            "invoice",
            "in_1",
            [
                ("status", "paid".into()),
                ("attempt_count", "1".into()),
                ("amount_paid", "500".into()),
            ],
        );
        let found = diff(&invoice("paid", 1), &held);
        assert!(
            matches!(&found[..], [Mismatch::Differs { field: "amount_paid", stripe, .. }] if stripe == "∅"),
            "{found:?}"
        );
    }

    #[test]
    fn the_same_id_under_two_kinds_is_two_objects() {
        let mut a = Snapshot::default();
        a.insert("charge", "x", [("outcome", "failed".into())]);
        let mut b = Snapshot::default();
        b.insert("dispute", "x", [("outcome", "failed".into())]);
        assert_eq!(diff(&a, &b).len(), 2);
        assert_eq!(a.counts().get("charge"), Some(&1));
    }

    #[test]
    fn signals_missing_and_extra() {
        let s = |k: &str, c: &str| (k.to_owned(), c.to_owned());
        let expected = BTreeSet::from([
            s("payment_failed", "invoice:in_1"),
            s("dispute_opened", "dispute:dp_1"),
        ]);
        let open = BTreeSet::from([
            s("payment_failed", "invoice:in_1"),
            s("payment_failed", "invoice:in_9"),
        ]);
        let (missing, extra) = signal_diff(&expected, &open);
        assert_eq!(missing, [s("dispute_opened", "dispute:dp_1")]);
        assert_eq!(extra, [s("payment_failed", "invoice:in_9")]);
    }

    #[test]
    fn none_renders_the_same_on_both_sides() {
        assert_eq!(opt(None::<i64>), opt(None::<String>));
        assert_eq!(opt(Some(3)), "3");
    }
}
