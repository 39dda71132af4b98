//! Hourly digest windows.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

/// The UTC hour `[start, end)` an alert belongs to in hourly digest mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DigestWindow {
    /// Start of the hour, inclusive.
    pub start: DateTime<Utc>,
    /// Start of the next hour, exclusive: when the digest is due.
    pub end: DateTime<Utc>,
}

impl DigestWindow {
    /// Whether `at` falls in the window.
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.start <= at && at < self.end
    }
}

/// The window of an alert created at `at`: the UTC hour it falls in. Hours
/// are UTC so every replica and every time zone agree on the windows; the
/// service groups a CSM's alerts by `start` and delivers the digest at
/// `end`.
pub fn digest_window(at: DateTime<Utc>) -> DigestWindow {
    let seconds = at.timestamp();
    let start_seconds = seconds - seconds.rem_euclid(3600);
    // The start is at or before `at`, so it is representable.
    let start = DateTime::from_timestamp(start_seconds, 0).unwrap_or(at);
    DigestWindow {
        start,
        end: start + TimeDelta::hours(1),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    #[test]
    fn window_is_the_utc_hour() {
        let window = digest_window(utc(2026, 1, 5, 10, 37, 12));
        assert_eq!(window.start, utc(2026, 1, 5, 10, 0, 0));
        assert_eq!(window.end, utc(2026, 1, 5, 11, 0, 0));
    }

    #[test]
    fn start_is_inclusive_end_exclusive() {
        let start = utc(2026, 1, 5, 10, 0, 0);
        assert_eq!(digest_window(start).start, start);
        let just_before = start - TimeDelta::nanoseconds(1);
        assert_eq!(digest_window(just_before).start, utc(2026, 1, 5, 9, 0, 0));
        let window = digest_window(start);
        assert!(window.contains(start));
        assert!(window.contains(window.end - TimeDelta::nanoseconds(1)));
        assert!(!window.contains(window.end));
        assert!(!window.contains(just_before));
    }

    #[test]
    fn windows_cross_days_and_years() {
        let window = digest_window(utc(2026, 12, 31, 23, 59, 59));
        assert_eq!(window.start, utc(2026, 12, 31, 23, 0, 0));
        assert_eq!(window.end, utc(2027, 1, 1, 0, 0, 0));
    }

    #[test]
    fn sub_second_times_and_times_before_1970() {
        let with_nanos = utc(2026, 1, 5, 10, 0, 0) + TimeDelta::milliseconds(999);
        assert_eq!(digest_window(with_nanos).start, utc(2026, 1, 5, 10, 0, 0));
        let old = utc(1969, 12, 31, 23, 30, 0);
        assert_eq!(digest_window(old).start, utc(1969, 12, 31, 23, 0, 0));
    }

    #[test]
    fn every_time_of_an_hour_shares_one_window() {
        let start = utc(2026, 6, 1, 8, 0, 0);
        let first = digest_window(start);
        for minute in 0..60 {
            assert_eq!(digest_window(start + TimeDelta::minutes(minute)), first);
        }
        assert_ne!(digest_window(start + TimeDelta::minutes(60)), first);
    }
}
