//! Query-string values shared by the read endpoints, each refused with a 400 that says why.

use chrono::{DateTime, NaiveDate, Utc};

use crate::error::ApiError;

/// A page size within `1..=max`, `default` when absent.
pub fn limit(raw: Option<i64>, default: i64, max: i64) -> Result<i64, ApiError> {
    let limit = raw.unwrap_or(default);
    if (1..=max).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {max}"
        )))
    }
}

/// Which end of a range a bare date stands for.
#[derive(Debug, Clone, Copy)]
pub enum Bound {
    /// A date means its first instant.
    From,
    /// A date means its whole day (inclusive).
    Through,
}

/// An RFC 3339 timestamp (`2026-11-03T10:00:00Z`) or a date (`2026-11-03`, UTC).
pub fn instant(name: &str, raw: &str, bound: Bound) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
        return Ok(at.with_timezone(&Utc));
    }
    let date = NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| {
        ApiError::BadRequest(format!(
            "{name} must be an RFC 3339 timestamp or a YYYY-MM-DD date"
        ))
    })?;
    let day = match bound {
        Bound::From => date,
        Bound::Through => date.succ_opt().unwrap_or(date),
    };
    let start = day.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    Ok(match bound {
        Bound::From => start,
        Bound::Through => start - chrono::Duration::microseconds(1),
    })
}

/// A comma-separated list of values, each one of `allowed`.
pub fn one_of_each(name: &str, raw: &str, allowed: &[&str]) -> Result<Vec<String>, ApiError> {
    let values: Vec<String> = raw
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect();
    if values.is_empty() {
        return Err(ApiError::BadRequest(format!("{name} is empty")));
    }
    if let Some(bad) = values.iter().find(|v| !allowed.contains(&v.as_str())) {
        return Err(ApiError::BadRequest(format!(
            "{name} `{bad}` is not one of {}",
            allowed.join(", ")
        )));
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_default_and_are_bounded() {
        assert_eq!(limit(None, 20, 100).unwrap(), 20);
        assert_eq!(limit(Some(1), 20, 100).unwrap(), 1);
        assert_eq!(limit(Some(100), 20, 100).unwrap(), 100);
        for bad in [0, -1, 101] {
            assert!(limit(Some(bad), 20, 100).is_err());
        }
    }

    #[test]
    fn instants_accept_timestamps_and_whole_days() {
        let at = instant("created_gte", "2026-11-03T10:00:00+01:00", Bound::From).unwrap();
        assert_eq!(at.to_rfc3339(), "2026-11-03T09:00:00+00:00");
        let from = instant("created_gte", "2026-11-03", Bound::From).unwrap();
        assert_eq!(from.to_rfc3339(), "2026-11-03T00:00:00+00:00");
        let through = instant("created_lte", "2026-11-03", Bound::Through).unwrap();
        assert_eq!(through.to_rfc3339(), "2026-11-03T23:59:59.999999+00:00");
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "1764000000",
            "2026-11-03 10:00",
        ] {
            assert!(instant("created_gte", bad, Bound::From).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn lists_take_only_known_values() {
        let allowed = ["open", "paid"];
        assert_eq!(
            one_of_each("status", "open, paid", &allowed).unwrap(),
            vec!["open", "paid"]
        );
        assert!(one_of_each("status", "open,void", &allowed).is_err());
        assert!(one_of_each("status", " , ", &allowed).is_err());
    }
}
