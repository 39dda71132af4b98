//! Opaque page cursors for lists ordered newest first by (timestamp, id): the position after
//! the last row of a page. Clients pass them back unchanged; anything else is a 400.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::ApiError;

const ENGINE: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;
/// Bounds what a client can make us decode.
const MAX_CURSOR: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub at: DateTime<Utc>,
    pub id: String,
}

impl Cursor {
    pub fn encode(&self) -> String {
        ENGINE.encode(format!("{}|{}", self.at.timestamp_micros(), self.id))
    }

    pub fn decode(raw: &str) -> Result<Self, ApiError> {
        let invalid = || ApiError::BadRequest("cursor is not one this API returned".into());
        if raw.len() > MAX_CURSOR {
            return Err(invalid());
        }
        let bytes = ENGINE.decode(raw).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let (micros, id) = text.split_once('|').ok_or_else(invalid)?;
        let at = micros
            .parse::<i64>()
            .ok()
            .and_then(DateTime::from_timestamp_micros)
            .ok_or_else(invalid)?;
        if id.is_empty() {
            return Err(invalid());
        }
        Ok(Self {
            at,
            id: id.to_owned(),
        })
    }
}

/// One page of an account's list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub account_id: String,
    pub data: Vec<T>,
    pub has_more: bool,
    /// Pass as `starting_after` for the next page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Cuts `rows` (fetched with `LIMIT limit + 1`) to `limit`; the extra row only says there
    /// is more, and the cursor points after the last row kept.
    pub fn cut(
        account_id: String,
        mut rows: Vec<T>,
        limit: i64,
        position: impl Fn(&T) -> Cursor,
    ) -> Self {
        let limit = usize::try_from(limit).unwrap_or(0);
        let has_more = rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = has_more
            .then(|| rows.last())
            .flatten()
            .map(|last| position(last).encode());
        Self {
            account_id,
            data: rows,
            has_more,
            next_cursor,
        }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            account_id: self.account_id,
            data: self.data.into_iter().map(f).collect(),
            has_more: self.has_more,
            next_cursor: self.next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_strings_are_refused() {
        let cursor = Cursor {
            at: DateTime::from_timestamp_micros(1_764_000_000_123_456).unwrap(),
            id: "in_1|odd".into(),
        };
        assert_eq!(Cursor::decode(&cursor.encode()).unwrap(), cursor);
        let bad = [
            String::new(),
            "not base64!".into(),
            ENGINE.encode("no-separator"),
            ENGINE.encode("abc|in_1"),
            ENGINE.encode("123|"),
            ENGINE.encode(format!("{}|in_1", i64::MAX)),
            ENGINE.encode([0xff, 0xfe, b'|', b'x']),
            "A".repeat(MAX_CURSOR + 1),
        ];
        for raw in bad {
            assert!(
                matches!(Cursor::decode(&raw), Err(ApiError::BadRequest(_))),
                "{raw:?} accepted"
            );
        }
    }
}
