//! Stripe's error JSON: `{"error": {"type", "code", "message", "param", ...}}`.

/// An error rendered the way Stripe renders it, with its HTTP status.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    /// `error.type`: invalid_request_error, api_error, card_error, idempotency_error.
    pub kind: &'static str,
    pub code: Option<String>,
    pub message: String,
    pub param: Option<String>,
    /// Card-error details (boxed: rare, and keeps `Result<_, ApiError>` small).
    pub card: Option<Box<CardErrorDetails>>,
}

/// Extra fields of a `card_error`.
#[derive(Debug, Clone, PartialEq)]
pub struct CardErrorDetails {
    pub decline_code: String,
    pub charge: String,
    pub payment_intent: Option<serde_json::Value>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.kind, self.message)
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    pub fn new(
        status: u16,
        kind: &'static str,
        code: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            kind,
            code: code.map(str::to_string),
            message: message.into(),
            param: None,
            card: None,
        }
    }

    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    /// 400 `invalid_request_error` with a code and the offending parameter.
    pub fn invalid(code: &str, param: &str, message: impl Into<String>) -> Self {
        Self::new(400, "invalid_request_error", Some(code), message).with_param(param)
    }

    pub fn unknown_param(param: &str) -> Self {
        Self::invalid(
            "parameter_unknown",
            param,
            format!("Received unknown parameter: {param}"),
        )
    }

    pub fn missing_param(param: &str) -> Self {
        Self::invalid(
            "parameter_missing",
            param,
            format!("Missing required param: {param}."),
        )
    }

    pub fn invalid_integer(param: &str, value: &str) -> Self {
        Self::invalid(
            "parameter_invalid_integer",
            param,
            format!("Invalid integer: {value}"),
        )
    }

    /// 404 `resource_missing` for an unknown id.
    pub fn missing(object: &str, id: &str, param: &str) -> Self {
        Self::new(
            404,
            "invalid_request_error",
            Some("resource_missing"),
            format!("No such {object}: '{id}'"),
        )
        .with_param(param)
    }

    pub fn unrecognized_url(method: &str, path: &str) -> Self {
        Self::new(
            404,
            "invalid_request_error",
            None,
            format!(
                "Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/."
            ),
        )
    }

    pub fn no_key() -> Self {
        Self::new(
            401,
            "invalid_request_error",
            None,
            "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
        )
    }

    pub fn bad_key(key: &str) -> Self {
        Self::new(
            401,
            "invalid_request_error",
            Some("api_key_invalid"),
            format!("Invalid API Key provided: {}", redact(key)),
        )
    }

    pub fn read_only_key(key: &str, account: &str, permission: &str) -> Self {
        Self::new(
            403,
            "invalid_request_error",
            None,
            format!(
                "The provided key '{}' does not have the required permissions for this endpoint on account '{account}'. Having the '{permission}' permission would allow this request to continue.",
                redact(key)
            ),
        )
    }

    pub fn account_access(key: &str, account: &str) -> Self {
        Self::new(
            403,
            "invalid_request_error",
            Some("account_invalid"),
            format!(
                "The provided key '{}' does not have access to account '{account}' (or that account does not exist). Application access may have been revoked.",
                redact(key)
            ),
        )
    }

    pub fn rate_limited() -> Self {
        Self::new(
            429,
            "invalid_request_error",
            Some("rate_limit"),
            "Request rate limit exceeded. You can learn more about rate limits here https://stripe.com/docs/rate-limits.",
        )
    }

    #[allow(clippy::self_named_constructors)]
    pub fn api_error(status: u16) -> Self {
        Self::new(
            status,
            "api_error",
            None,
            "An unknown error occurred while processing your request. (injected by stripe-fake)",
        )
    }

    pub fn idempotency(key: &str) -> Self {
        Self::new(
            400,
            "idempotency_error",
            None,
            format!(
                "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{key}' if you meant to execute a different request."
            ),
        )
    }

    pub fn card_declined(decline_code: &str, message: &str, charge: &str) -> Self {
        let mut e = Self::new(
            402,
            "card_error",
            Some(card_error_code(decline_code)),
            message,
        );
        e.card = Some(Box::new(CardErrorDetails {
            decline_code: decline_code.to_string(),
            charge: charge.to_string(),
            payment_intent: None,
        }));
        e
    }

    /// `{"error": {...}}` with Stripe's field names; `doc_url` follows from `code`.
    pub fn to_json(&self) -> String {
        let mut m = serde_json::Map::new();
        if let Some(card) = &self.card {
            m.insert("charge".into(), card.charge.clone().into());
            m.insert("decline_code".into(), card.decline_code.clone().into());
            if let Some(pi) = &card.payment_intent {
                m.insert("payment_intent".into(), pi.clone());
            }
        }
        if let Some(c) = &self.code {
            m.insert("code".into(), c.clone().into());
            m.insert(
                "doc_url".into(),
                format!(
                    "https://stripe.com/docs/error-codes/{}",
                    c.replace('_', "-")
                )
                .into(),
            );
        }
        m.insert("message".into(), self.message.clone().into());
        if let Some(p) = &self.param {
            m.insert("param".into(), p.clone().into());
        }
        m.insert("type".into(), self.kind.into());
        serde_json::json!({ "error": m }).to_string()
    }
}

/// Stripe returns `code=expired_card` etc. for some declines and `card_declined` for the rest.
pub fn card_error_code(decline: &str) -> &'static str {
    match decline {
        "expired_card" => "expired_card",
        "incorrect_cvc" => "incorrect_cvc",
        "processing_error" => "processing_error",
        _ => "card_declined",
    }
}

/// Human message for a decline code, as Stripe words them.
pub fn decline_message(decline: &str) -> &'static str {
    match decline {
        "insufficient_funds" => "Your card has insufficient funds.",
        "expired_card" => "Your card has expired.",
        "incorrect_cvc" => "Your card's security code is incorrect.",
        "processing_error" => {
            "An error occurred while processing your card. Try again in a little bit."
        }
        "lost_card" | "stolen_card" => "Your card was declined.",
        _ => "Your card was declined.",
    }
}

/// `sk_test_abcdef123` → `sk_test_*****f123`, like Stripe's messages.
pub fn redact(key: &str) -> String {
    let prefix_len = key
        .match_indices('_')
        .nth(1)
        .map(|(i, _)| i + 1)
        .unwrap_or(0)
        .min(key.len());
    let chars: Vec<char> = key.chars().collect();
    let tail: String = chars.iter().skip(chars.len().saturating_sub(4)).collect();
    let head: String = key.chars().take(prefix_len.min(chars.len())).collect();
    format!("{head}*********{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_json_shape() {
        let e = ApiError::missing("customer", "cus_x", "id");
        let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["code"], "resource_missing");
        assert_eq!(v["error"]["param"], "id");
        assert_eq!(v["error"]["message"], "No such customer: 'cus_x'");
    }

    #[test]
    fn redact_keeps_prefix_and_tail() {
        assert_eq!(redact("sk_test_abcdef1234"), "sk_test_*********1234");
        assert_eq!(redact("x"), "*********x");
    }
}
