//! Checking a Stripe API key before we store it: its shape (restricted vs secret, test vs live)
//! and one read call that proves it works and names the account.

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Restricted,
    Secret,
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Restricted => "restricted_key",
            Self::Secret => "secret_key",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyShape {
    pub kind: KeyKind,
    pub livemode: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("not a Stripe API key (expected rk_test_…, rk_live_…, sk_test_… or sk_live_…)")]
    Shape,
    #[error("a full secret key (sk_…) is refused: create a read-only restricted key (rk_…) in the Stripe dashboard")]
    SecretKeyRefused,
    #[error("this is a {found} key but this installation expects {expected} mode")]
    ModeMismatch {
        found: &'static str,
        expected: &'static str,
    },
    #[error("Stripe refused the key (invalid, revoked, or missing read permissions)")]
    Rejected,
    #[error("Stripe could not be reached; try again")]
    Unreachable,
}

/// Parses the key's prefix. Never echoes the key.
pub fn shape(key: &str) -> Result<KeyShape, KeyError> {
    let key = key.trim();
    let (kind, rest) = if let Some(rest) = key.strip_prefix("rk_") {
        (KeyKind::Restricted, rest)
    } else if let Some(rest) = key.strip_prefix("sk_") {
        (KeyKind::Secret, rest)
    } else {
        return Err(KeyError::Shape);
    };
    let (livemode, body) = if let Some(body) = rest.strip_prefix("live_") {
        (true, body)
    } else if let Some(body) = rest.strip_prefix("test_") {
        (false, body)
    } else {
        return Err(KeyError::Shape);
    };
    if body.len() < 4
        || body.len() > 255
        || !body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(KeyError::Shape);
    }
    Ok(KeyShape { kind, livemode })
}

/// `rk_test_…a1b2`: recognisable by a person, useless to anyone else.
pub fn hint(key: &str) -> String {
    let key = key.trim();
    let prefix_len = key
        .find('_')
        .and_then(|i| key[i + 1..].find('_').map(|j| i + j + 2))
        .unwrap_or(0);
    let tail: String = key
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("{}…{}", &key[..prefix_len.min(key.len())], tail)
}

#[derive(Debug, Deserialize)]
pub struct StripeAccount {
    pub id: String,
}

/// Calls `GET /v1/account` with the key: proves it works and tells whose account it is.
pub async fn fetch_account(
    client: &reqwest::Client,
    api_base: &str,
    key: &str,
) -> Result<StripeAccount, KeyError> {
    let url = format!("{}/v1/account", api_base.trim_end_matches('/'));
    let resp = client.get(&url).bearer_auth(key.trim()).send().await.map_err(|error| {
        tracing::warn!(%url, error = %format!("{error:#}"), "Stripe unreachable while validating a key");
        KeyError::Unreachable
    })?;
    match resp.status().as_u16() {
        200 => resp.json::<StripeAccount>().await.map_err(|error| {
            tracing::warn!(%url, %error, "unexpected answer from GET /v1/account");
            KeyError::Unreachable
        }),
        401 | 403 => Err(KeyError::Rejected),
        status => {
            tracing::warn!(%url, status, "unexpected status from GET /v1/account");
            Err(KeyError::Unreachable)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(
            shape("rk_test_abc123").unwrap(),
            KeyShape {
                kind: KeyKind::Restricted,
                livemode: false
            }
        );
        assert_eq!(
            shape("rk_live_abc123").unwrap(),
            KeyShape {
                kind: KeyKind::Restricted,
                livemode: true
            }
        );
        assert_eq!(
            shape(" sk_test_abcd ").unwrap(),
            KeyShape {
                kind: KeyKind::Secret,
                livemode: false
            }
        );
        for bad in [
            "",
            "pk_test_abcd",
            "rk_abcd",
            "rk_test_",
            "rk_test_ab",
            "rk_test_ab cd",
            "whsec_abcd",
            "rk_prod_abcd",
        ] {
            assert_eq!(shape(bad).unwrap_err(), KeyError::Shape, "{bad}");
        }
    }

    #[test]
    fn hints_hide_the_key() {
        assert_eq!(hint("rk_test_51Habcdefghijklmn9xyz"), "rk_test_…9xyz");
        assert_eq!(hint("sk_live_ab_wxyz"), "sk_live_…wxyz");
        let h = hint("rk_test_secretsecretsecret1234");
        assert!(!h.contains("secretsecret"));
    }

    #[test]
    fn errors_do_not_echo_keys() {
        let e = KeyError::ModeMismatch {
            found: "live",
            expected: "test",
        };
        assert!(!e.to_string().contains("rk_"));
    }
}
