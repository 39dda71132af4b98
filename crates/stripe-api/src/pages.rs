//! Walking Stripe's list endpoints one page at a time, with the cursor in the caller's
//! hands (a backfill saves it after every page so a restart resumes, not restarts).

use stripe_client_core::StripeRequest;
use stripe_types::{AsCursorOpt as _, List, Object};

use crate::{ApiError, StripeApi};

/// Stripe's maximum page size.
pub const PAGE_SIZE: i64 = 100;

#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `starting_after` for the next page; `None` when the list is exhausted.
    pub next_cursor: Option<String>,
}

impl<T: Object> Page<T> {
    fn from_list(list: List<T>) -> Self {
        let next_cursor = if list.has_more {
            list.data
                .last()
                .and_then(|last| last.id().as_cursor_opt().map(str::to_owned))
        } else {
            None
        };
        Page {
            items: list.data,
            next_cursor,
        }
    }
}

impl StripeApi {
    /// Fetches one page of a list request (built by the caller with `limit` and
    /// `starting_after`).
    pub async fn page<R, T>(&self, op: &'static str, request: &R) -> Result<Page<T>, ApiError>
    where
        R: StripeRequest<Output = List<T>>,
        List<T>: miniserde::Deserialize,
        T: Object,
    {
        Ok(Page::from_list(self.send(op, request).await?))
    }
}
