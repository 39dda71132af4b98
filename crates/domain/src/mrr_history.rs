//! MRR over time from recorded subscription changes: the month-end MRR per currency and
//! the month's movements (new, expansion, contraction, churn, reactivation).
//!
//! The input is the change history the sync worker records (one row per applied change of
//! a subscription's plan, quantity, status or MRR). Two rules keep the series honest:
//!
//! - **Baselines are not movements.** A change first observed by a backfill or
//!   reconciliation says "this is what the subscription was worth when we looked", not
//!   "this revenue was won that day"; it sets the MRR from then on without adding to the
//!   month's `new` or `expansion`.
//! - **No invented past.** Before the earliest recorded change nothing is known, so months
//!   ending before it are left out and [`MrrSeries::history_since`] says where the series
//!   starts, instead of showing zeros that read like "no revenue".
//!
//! Months are calendar months in UTC. The current month's MRR is the MRR at `now`.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike as _, NaiveDate, TimeZone as _, Utc};
use serde::Serialize;

use crate::{money::Currency, movement::MovementKind};

/// One recorded change of one subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedChange {
    pub subscription_id: String,
    pub at: DateTime<Utc>,
    pub currency: Currency,
    pub mrr_before: i64,
    pub mrr_after: i64,
    pub movement: MovementKind,
    /// Observed by a backfill or reconciliation rather than caused by an event: sets the
    /// level, never counts as a movement.
    pub baseline: bool,
}

/// A month's MRR in one currency. Movement amounts are signed deltas in minor units
/// (contraction and churn are negative); `net` is their sum.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MonthMrr {
    /// `YYYY-MM`.
    pub month: String,
    pub currency: String,
    /// MRR at the end of the month (at `now` for the current month).
    pub mrr: i64,
    pub new: i64,
    pub expansion: i64,
    pub contraction: i64,
    pub churn: i64,
    pub reactivation: i64,
    pub net: i64,
}

/// The series: months oldest first, one entry per month and currency seen.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MrrSeries {
    pub months: Vec<MonthMrr>,
    /// The earliest recorded change; months ending before it are not reported.
    pub history_since: Option<DateTime<Utc>>,
}

/// The first instant of the month `offset` months after (negative: before) `date`'s month.
fn month_start(date: NaiveDate, offset: i32) -> DateTime<Utc> {
    let index = date.year() * 12 + date.month0() as i32 + offset;
    let (year, month0) = (index.div_euclid(12), index.rem_euclid(12) as u32);
    Utc.from_utc_datetime(
        &NaiveDate::from_ymd_opt(year, month0 + 1, 1)
            .expect("a valid month")
            .and_hms_opt(0, 0, 0)
            .expect("midnight"),
    )
}

/// Where a [`monthly_series`] of `months` months ending at `now` starts: the changes it
/// needs are the ones from here on plus each subscription's latest one before.
pub fn series_start(now: DateTime<Utc>, months: u32) -> DateTime<Utc> {
    month_start(now.date_naive(), 1 - months.max(1) as i32)
}

/// The last `months` calendar months up to and including `now`'s month.
pub fn monthly_series(changes: &[RecordedChange], now: DateTime<Utc>, months: u32) -> MrrSeries {
    let mut ordered: Vec<&RecordedChange> = changes.iter().filter(|c| c.at <= now).collect();
    ordered.sort_by(|a, b| {
        a.at.cmp(&b.at)
            .then(a.subscription_id.cmp(&b.subscription_id))
    });
    let Some(first) = ordered.first().map(|c| c.at) else {
        return MrrSeries::default();
    };
    let today = now.date_naive();
    // The latest recorded level of every subscription so far: (currency, mrr).
    let mut level: HashMap<&str, (Currency, i64)> = HashMap::new();
    let mut next = ordered.iter().peekable();
    let mut out = Vec::new();
    for back in (0..months as i32).rev() {
        let start = month_start(today, -back);
        let end = if back == 0 {
            now
        } else {
            month_start(today, -back + 1)
        };
        let mut moves: BTreeMap<Currency, MonthMrr> = BTreeMap::new();
        // `end` is exclusive except for the current month, where `now` itself counts.
        while let Some(change) = next.next_if(|c| c.at < end || (back == 0 && c.at == end)) {
            level.insert(&change.subscription_id, (change.currency, change.mrr_after));
            if change.at < start || change.baseline {
                continue;
            }
            let delta = change.mrr_after - change.mrr_before;
            let month = moves.entry(change.currency).or_default();
            match change.movement {
                MovementKind::New => month.new += delta,
                MovementKind::Expansion => month.expansion += delta,
                MovementKind::Contraction => month.contraction += delta,
                MovementKind::Churn => month.churn += delta,
                MovementKind::Reactivation => month.reactivation += delta,
                MovementKind::Unchanged => {}
            }
            month.net += delta;
        }
        // Nothing was known before `first` (the current month's `now` is inclusive).
        if end < first || (back != 0 && end == first) {
            continue;
        }
        let mut totals: BTreeMap<Currency, i64> = BTreeMap::new();
        for (currency, mrr) in level.values() {
            *totals.entry(*currency).or_default() += mrr;
        }
        for currency in moves.keys() {
            totals.entry(*currency).or_default();
        }
        let label = format!("{:04}-{:02}", start.year(), start.month());
        for (currency, mrr) in totals {
            let moved = moves.remove(&currency).unwrap_or_default();
            out.push(MonthMrr {
                month: label.clone(),
                currency: currency.as_str().to_owned(),
                mrr,
                ..moved
            });
        }
    }
    MrrSeries {
        months: out,
        history_since: Some(first),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap()
    }

    fn change(
        sub: &str,
        when: DateTime<Utc>,
        before: i64,
        after: i64,
        movement: MovementKind,
    ) -> RecordedChange {
        RecordedChange {
            subscription_id: sub.into(),
            at: when,
            currency: Currency::USD,
            mrr_before: before,
            mrr_after: after,
            movement,
            baseline: false,
        }
    }

    fn baseline(sub: &str, when: DateTime<Utc>, mrr: i64) -> RecordedChange {
        RecordedChange {
            baseline: true,
            ..change(sub, when, 0, mrr, MovementKind::New)
        }
    }

    fn row<'a>(series: &'a MrrSeries, month: &str, currency: &str) -> &'a MonthMrr {
        series
            .months
            .iter()
            .find(|m| m.month == month && m.currency == currency)
            .unwrap_or_else(|| panic!("no {month} {currency} in {series:?}"))
    }

    #[test]
    fn the_series_starts_on_the_first_of_its_oldest_month() {
        let start = |now, months| series_start(now, months).to_rfc3339();
        assert_eq!(start(at(2026, 12, 2), 12), "2026-01-01T00:00:00+00:00");
        assert_eq!(start(at(2026, 3, 31), 12), "2025-04-01T00:00:00+00:00");
        assert_eq!(start(at(2026, 3, 31), 1), "2026-03-01T00:00:00+00:00");
        // Zero months is read as the current month, not a range ending before it starts.
        assert_eq!(start(at(2026, 3, 31), 0), "2026-03-01T00:00:00+00:00");
        // Changes before the start only set levels: the same series either way.
        let before = change("sub_a", at(2025, 11, 20), 0, 5_000, MovementKind::New);
        let inside = change(
            "sub_a",
            at(2026, 6, 1),
            5_000,
            8_000,
            MovementKind::Expansion,
        );
        let now = at(2026, 12, 2);
        let full = monthly_series(&[before.clone(), inside.clone()], now, 12);
        let trimmed = monthly_series(
            &[
                RecordedChange {
                    baseline: true,
                    ..before
                },
                inside,
            ],
            now,
            12,
        );
        assert_eq!(full.months, trimmed.months);
    }

    #[test]
    fn no_history_is_an_empty_series() {
        let series = monthly_series(&[], at(2026, 12, 2), 12);
        assert_eq!(series, MrrSeries::default());
    }

    #[test]
    fn months_before_the_first_change_are_not_reported() {
        let series = monthly_series(
            &[baseline("sub_a", at(2026, 10, 15), 10_000)],
            at(2026, 12, 2),
            12,
        );
        let months: Vec<_> = series.months.iter().map(|m| m.month.as_str()).collect();
        assert_eq!(months, ["2026-10", "2026-11", "2026-12"]);
        assert_eq!(series.history_since, Some(at(2026, 10, 15)));
        assert!(series.months.iter().all(|m| m.mrr == 10_000));
    }

    #[test]
    fn a_baseline_sets_the_level_but_is_not_new_revenue() {
        let series = monthly_series(
            &[baseline("sub_a", at(2026, 11, 3), 10_000)],
            at(2026, 12, 2),
            2,
        );
        let nov = row(&series, "2026-11", "usd");
        assert_eq!((nov.mrr, nov.new, nov.net), (10_000, 0, 0));
    }

    #[test]
    fn every_movement_kind_lands_in_its_month_with_its_sign() {
        let changes = [
            baseline("sub_a", at(2026, 8, 1), 5_000),
            change("sub_b", at(2026, 9, 10), 0, 2_000, MovementKind::New),
            change(
                "sub_a",
                at(2026, 10, 5),
                5_000,
                7_000,
                MovementKind::Expansion,
            ),
            change(
                "sub_b",
                at(2026, 10, 20),
                2_000,
                1_500,
                MovementKind::Contraction,
            ),
            change("sub_a", at(2026, 11, 1), 7_000, 0, MovementKind::Churn),
            change(
                "sub_a",
                at(2026, 12, 1),
                0,
                6_000,
                MovementKind::Reactivation,
            ),
        ];
        let series = monthly_series(&changes, at(2026, 12, 2), 5);
        let aug = row(&series, "2026-08", "usd");
        assert_eq!((aug.mrr, aug.net), (5_000, 0));
        let sep = row(&series, "2026-09", "usd");
        assert_eq!((sep.mrr, sep.new, sep.net), (7_000, 2_000, 2_000));
        let oct = row(&series, "2026-10", "usd");
        assert_eq!(
            (oct.mrr, oct.expansion, oct.contraction, oct.net),
            (8_500, 2_000, -500, 1_500)
        );
        let nov = row(&series, "2026-11", "usd");
        assert_eq!((nov.mrr, nov.churn, nov.net), (1_500, -7_000, -7_000));
        let dec = row(&series, "2026-12", "usd");
        assert_eq!((dec.mrr, dec.reactivation), (7_500, 6_000));
    }

    #[test]
    fn month_end_mrr_equals_the_previous_month_plus_net() {
        let changes = [
            baseline("sub_a", at(2026, 6, 1), 5_000),
            change("sub_b", at(2026, 7, 10), 0, 2_000, MovementKind::New),
            change(
                "sub_a",
                at(2026, 8, 5),
                5_000,
                9_000,
                MovementKind::Expansion,
            ),
            change("sub_b", at(2026, 9, 20), 2_000, 0, MovementKind::Churn),
        ];
        let series = monthly_series(&changes, at(2026, 12, 2), 7);
        for pair in series.months.windows(2) {
            assert_eq!(pair[1].mrr, pair[0].mrr + pair[1].net, "{pair:?}");
        }
    }

    #[test]
    fn currencies_are_never_summed_together() {
        let mut eur = change("sub_e", at(2026, 11, 5), 0, 3_000, MovementKind::New);
        eur.currency = Currency::EUR;
        let changes = [
            change("sub_u", at(2026, 11, 4), 0, 1_000, MovementKind::New),
            eur,
        ];
        let series = monthly_series(&changes, at(2026, 12, 2), 2);
        assert_eq!(row(&series, "2026-11", "usd").mrr, 1_000);
        assert_eq!(row(&series, "2026-11", "eur").mrr, 3_000);
        assert_eq!(row(&series, "2026-11", "eur").new, 3_000);
        assert_eq!(series.months.len(), 4);
    }

    #[test]
    fn a_change_on_the_first_instant_of_a_month_belongs_to_that_month() {
        let first = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
        let changes = [
            baseline("sub_a", at(2026, 10, 2), 1_000),
            change("sub_a", first, 1_000, 3_000, MovementKind::Expansion),
        ];
        let series = monthly_series(&changes, at(2026, 12, 2), 3);
        assert_eq!(row(&series, "2026-10", "usd").mrr, 1_000);
        assert_eq!(row(&series, "2026-11", "usd").expansion, 2_000);
    }

    #[test]
    fn changes_after_now_are_ignored_and_now_itself_counts() {
        let now = at(2026, 12, 2);
        let changes = [
            change("sub_a", now, 0, 1_000, MovementKind::New),
            change("sub_a", at(2026, 12, 3), 1_000, 0, MovementKind::Churn),
        ];
        let series = monthly_series(&changes, now, 1);
        assert_eq!(row(&series, "2026-12", "usd").mrr, 1_000);
    }

    #[test]
    fn the_window_crosses_year_boundaries() {
        let changes = [baseline("sub_a", at(2025, 11, 20), 1_000)];
        let series = monthly_series(&changes, at(2026, 2, 10), 12);
        let months: Vec<_> = series.months.iter().map(|m| m.month.as_str()).collect();
        assert_eq!(months, ["2025-11", "2025-12", "2026-01", "2026-02"]);
    }

    #[test]
    fn history_older_than_the_window_still_sets_the_opening_level() {
        let changes = [
            change("sub_a", at(2024, 1, 5), 0, 4_000, MovementKind::New),
            change(
                "sub_a",
                at(2026, 11, 5),
                4_000,
                5_000,
                MovementKind::Expansion,
            ),
        ];
        let series = monthly_series(&changes, at(2026, 12, 2), 2);
        let nov = row(&series, "2026-11", "usd");
        assert_eq!((nov.mrr, nov.expansion, nov.new), (5_000, 1_000, 0));
        assert_eq!(series.months.len(), 2);
    }

    #[test]
    fn a_churned_subscription_keeps_its_currency_row_at_zero() {
        let changes = [
            change("sub_a", at(2026, 10, 5), 0, 4_000, MovementKind::New),
            change("sub_a", at(2026, 11, 5), 4_000, 0, MovementKind::Churn),
        ];
        let series = monthly_series(&changes, at(2026, 12, 2), 3);
        let dec = row(&series, "2026-12", "usd");
        assert_eq!((dec.mrr, dec.net), (0, 0));
    }
}
