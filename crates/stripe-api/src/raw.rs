//! Retrieving any object as JSON by path: the refetch behind a webhook whose state is in
//! doubt. Typed retrieves differ per object (some answer "deleted" variants); the sync
//! worker parses the JSON into the same async-stripe types its events carry.

use serde::Serialize;
use stripe_client_core::{RequestBuilder, StripeMethod, StripeRequest};

use crate::{ApiError, StripeApi};

/// `GET /v1{path}` with `expand[]` paths and other query parameters.
#[derive(Debug, Clone)]
pub struct GetObject {
    pub path: String,
    pub expand: Vec<String>,
    /// Extra parameters, e.g. `("created[gte]", "1700000000")`, `("limit", "100")`.
    pub query: Vec<(String, String)>,
}

#[derive(Serialize)]
struct Expand<'a> {
    expand: &'a [String],
}

impl StripeRequest for GetObject {
    type Output = miniserde::json::Value;

    fn build(&self) -> RequestBuilder {
        let mut builder = RequestBuilder::new(StripeMethod::Get, self.path.clone());
        if !self.expand.is_empty() {
            builder = builder.query(&Expand {
                expand: &self.expand,
            });
        }
        if !self.query.is_empty() {
            let extra = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&self.query)
                .finish();
            builder.query = Some(match builder.query.take() {
                Some(q) if !q.is_empty() => format!("{q}&{extra}"),
                _ => extra,
            });
        }
        builder
    }
}

impl StripeApi {
    /// Retrieves `/v1{path}` (e.g. `/subscriptions/sub_123`) as JSON.
    pub async fn get_object(
        &self,
        op: &'static str,
        path: String,
        expand: &[&str],
    ) -> Result<serde_json::Value, ApiError> {
        self.get_json(op, path, expand, &[]).await
    }

    /// `GET /v1{path}` with expansions and query parameters, as JSON (a list page, too).
    pub async fn get_json(
        &self,
        op: &'static str,
        path: String,
        expand: &[&str],
        query: &[(&str, String)],
    ) -> Result<serde_json::Value, ApiError> {
        let request = GetObject {
            path,
            expand: expand.iter().map(|e| (*e).to_owned()).collect(),
            query: query
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        };
        let value = self.send(op, &request).await?;
        serde_json::from_str(&miniserde::json::to_string(&value)).map_err(|e| ApiError::Decode {
            op,
            message: e.to_string(),
        })
    }
}
