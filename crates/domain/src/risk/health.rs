//! The billing health score of one account: 100 minus what its signals
//! deduct, with every deduction listed.
//!
//! ```text
//! deduction = weight(kind) × multiplier(severity) × decay
//! decay     = 1                                       while open
//!           = initial × 0.5 ^ (days since resolved / half-life)
//!                                                     once resolved
//!           = nothing (not listed)                    past the cutoff, or
//!                                                     for clear_on_resolve kinds
//! score     = clamp(100 − Σ deductions, 0, 100), rounded half up to an integer
//! ```
//!
//! `initial` is [`HealthWeights::resolved_initial_factor`] (default 0.5): a
//! resolution lifts the score at once (a paid invoice is money in), and what
//! is left of the deduction, the memory of the failure, fades with the
//! half-life. A resolution stamped after `now` (clock skew between the
//! service's replicas) counts as resolved just now: the record says it is
//! resolved, so the score shows the recovery rather than waiting for the
//! clock to catch up.
//!
//! Open signals do not decay, nor grow: the rules already raise their
//! severity as the cause worsens (attempt count, retries exhausted,
//! delinquency age, card expiry close), so a time-based growth here would
//! count the same worsening twice and make the score move with no new fact.
//! Each deduction is rounded to hundredths of a point before summing, so
//! the score does not depend on the order of the signals.

use std::cmp::Reverse;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{CauseKey, HealthWeights, Severity, SignalKind, SignalRecord};

const SECONDS_PER_DAY: f64 = 86_400.0;

/// Where a score falls, by [`HealthBands`](super::HealthBands).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthBand {
    /// At or above `healthy_min` (80).
    Healthy,
    /// At or above `watch_min` (60).
    Watch,
    /// At or above `at_risk_min` (40).
    AtRisk,
    /// Below `at_risk_min`.
    Critical,
}

impl HealthBand {
    /// The stable snake_case name, e.g. `"at_risk"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Watch => "watch",
            Self::AtRisk => "at_risk",
            Self::Critical => "critical",
        }
    }
}

impl fmt::Display for HealthBand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One signal's part of a score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthComponent {
    /// The signal's id ([`SignalRecord::id`]).
    pub signal_id: String,
    /// Its kind.
    pub kind: SignalKind,
    /// Its cause.
    pub cause_key: CauseKey,
    /// Its severity.
    pub severity: Severity,
    /// Whether it is open.
    pub open: bool,
    /// When it was raised.
    pub raised_at: DateTime<Utc>,
    /// When it was resolved.
    pub resolved_at: Option<DateTime<Utc>>,
    /// The kind's weight.
    pub weight: f64,
    /// The severity's multiplier.
    pub severity_multiplier: f64,
    /// 1 while open; once resolved, `resolved_initial_factor` fading with
    /// the half-life.
    pub decay_factor: f64,
    /// Points deducted, `weight × severity_multiplier × decay_factor`
    /// rounded to hundredths.
    pub deduction: f64,
}

/// An account's billing health, explainable from its components.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthScore {
    /// 0–100, 100 = healthy.
    pub score: u8,
    /// Band of `score`.
    pub band: HealthBand,
    /// Sum of the deductions (may exceed 100; the score stops at 0).
    pub total_deduction: f64,
    /// What deducted, largest deduction first.
    pub components: Vec<HealthComponent>,
}

/// Scores one account's signals at `now`. Pass the account's open signals
/// and those resolved within [`HealthWeights::resolved_cutoff_days`] (older
/// ones are ignored anyway). Records with the same id count once.
/// Deterministic and independent of the order of `signals`.
pub fn health_score(
    signals: &[SignalRecord],
    now: DateTime<Utc>,
    weights: &HealthWeights,
) -> HealthScore {
    let mut records: Vec<&SignalRecord> = signals.iter().collect();
    records.sort_by(|a, b| {
        (
            &a.id,
            a.kind,
            &a.cause_key,
            a.raised_at,
            a.resolved_at,
            a.severity,
        )
            .cmp(&(
                &b.id,
                b.kind,
                &b.cause_key,
                b.raised_at,
                b.resolved_at,
                b.severity,
            ))
    });
    records.dedup_by(|a, b| a.id == b.id);

    let mut scored: Vec<(i64, HealthComponent)> = records
        .into_iter()
        .filter_map(|record| component(record, now, weights))
        .collect();
    scored.sort_by(|(a_points, a), (b_points, b)| {
        (
            Reverse(*a_points),
            a.kind,
            &a.cause_key,
            a.raised_at,
            &a.signal_id,
        )
            .cmp(&(
                Reverse(*b_points),
                b.kind,
                &b.cause_key,
                b.raised_at,
                &b.signal_id,
            ))
    });
    let total: i64 = scored.iter().map(|(points, _)| *points).sum();
    let remaining = (10_000 - total).clamp(0, 10_000);
    let score = u8::try_from((remaining + 50) / 100).unwrap_or(0);
    let bands = &weights.bands;
    let band = if score >= bands.healthy_min {
        HealthBand::Healthy
    } else if score >= bands.watch_min {
        HealthBand::Watch
    } else if score >= bands.at_risk_min {
        HealthBand::AtRisk
    } else {
        HealthBand::Critical
    };
    HealthScore {
        score,
        band,
        total_deduction: total as f64 / 100.0,
        components: scored.into_iter().map(|(_, c)| c).collect(),
    }
}

/// The component and its deduction in hundredths of a point, or none when
/// the signal no longer counts.
fn component(
    record: &SignalRecord,
    now: DateTime<Utc>,
    weights: &HealthWeights,
) -> Option<(i64, HealthComponent)> {
    let decay_factor = match record.resolved_at {
        None => 1.0,
        Some(_) if weights.clear_on_resolve.contains(&record.kind) => return None,
        Some(resolved_at) => {
            // A resolution after `now` (clock skew) is one just made.
            let age_days = (now - resolved_at).num_seconds().max(0) as f64 / SECONDS_PER_DAY;
            if age_days >= weights.resolved_cutoff_days {
                return None;
            }
            weights.resolved_initial_factor
                * 0.5f64.powf(age_days / weights.resolved_half_life_days)
        }
    };
    let weight = weights.weights.get(record.kind);
    let severity_multiplier = weights.severity.get(record.severity);
    // Weights and multipliers are validated to [0, 100] and [0, 1]: the
    // product fits easily; `as` saturates anyway.
    let points = ((weight * severity_multiplier * decay_factor * 100.0).round() as i64).max(0);
    Some((
        points,
        HealthComponent {
            signal_id: record.id.clone(),
            kind: record.kind,
            cause_key: record.cause_key.clone(),
            severity: record.severity,
            open: record.is_open(),
            raised_at: record.raised_at,
            resolved_at: record.resolved_at,
            weight,
            severity_multiplier,
            decay_factor,
            deduction: points as f64 / 100.0,
        },
    ))
}

#[cfg(test)]
mod tests;
