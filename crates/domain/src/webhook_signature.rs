//! Stripe's webhook signature scheme, which we verify on the way in and use ourselves on the
//! way out (alerts to CSCX):
//! `Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "{t}.{raw body}")>[,v1=…][,v0=…]`.
//!
//! Verification runs on the raw bytes before any parsing, accepts when **any** `v1` matches
//! **any** active secret (several appear while a secret is being rolled), compares in constant
//! time (`ring::hmac::verify`), and rejects timestamps outside the tolerance in either
//! direction. The only way to obtain a [`VerifiedPayload`] is through [`Verifier::verify`], so
//! unverified bytes cannot reach code that expects verified ones.

use ring::hmac;

/// Longest header we look at; Stripe's are ~150 bytes even with several signatures.
const MAX_HEADER_LEN: usize = 4096;
/// More signatures than any real rotation produces; bounds the work an attacker can cause.
const MAX_SIGNATURES: usize = 8;

/// Why a webhook was refused. The messages are safe to return to the caller: they never
/// contain the body, the secret or the expected signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing Stripe-Signature header")]
    MissingHeader,
    #[error("malformed Stripe-Signature header")]
    MalformedHeader,
    #[error("no v1 signature in Stripe-Signature header")]
    NoV1Signature,
    #[error("timestamp outside the tolerance (too old)")]
    StaleTimestamp,
    #[error("timestamp outside the tolerance (in the future)")]
    FutureTimestamp,
    #[error("no signature matches")]
    Mismatch,
}

impl SignatureError {
    /// A short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingHeader => "missing_header",
            Self::MalformedHeader => "malformed_header",
            Self::NoV1Signature => "no_v1",
            Self::StaleTimestamp => "stale",
            Self::FutureTimestamp => "future",
            Self::Mismatch => "mismatch",
        }
    }
}

/// A parsed `Stripe-Signature` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    pub timestamp: i64,
    /// Every well-formed `v1` signature (32 bytes each); others are ignored.
    pub v1: Vec<[u8; 32]>,
}

/// Parses the header. Unknown schemes (`v0`, future ones) are ignored, as Stripe advises.
pub fn parse_header(header: &str) -> Result<SignatureHeader, SignatureError> {
    if header.is_empty() || header.len() > MAX_HEADER_LEN {
        return Err(SignatureError::MalformedHeader);
    }
    let mut timestamp = None;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        let (key, value) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::MalformedHeader)?;
        match key {
            "t" => {
                if timestamp.is_some()
                    || value.is_empty()
                    || !value.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err(SignatureError::MalformedHeader);
                }
                timestamp = Some(
                    value
                        .parse::<i64>()
                        .map_err(|_| SignatureError::MalformedHeader)?,
                );
            }
            "v1" => {
                let mut sig = [0u8; 32];
                if value.len() == 64
                    && hex::decode_to_slice(value, &mut sig).is_ok()
                    && v1.len() < MAX_SIGNATURES
                {
                    v1.push(sig);
                }
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::MalformedHeader)?;
    if v1.is_empty() {
        return Err(SignatureError::NoV1Signature);
    }
    Ok(SignatureHeader { timestamp, v1 })
}

/// Signs `payload` as Stripe does; returns the lowercase hex `v1` value.
pub fn sign(secret: &str, timestamp: i64, payload: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    hex::encode(hmac::sign(&key, &signed_message(timestamp, payload)).as_ref())
}

/// A complete `Stripe-Signature` header value for `payload`.
pub fn header_value(secret: &str, timestamp: i64, payload: &[u8]) -> String {
    format!("t={timestamp},v1={}", sign(secret, timestamp, payload))
}

fn signed_message(timestamp: i64, payload: &[u8]) -> Vec<u8> {
    let t = timestamp.to_string();
    let mut message = Vec::with_capacity(t.len() + 1 + payload.len());
    message.extend_from_slice(t.as_bytes());
    message.push(b'.');
    message.extend_from_slice(payload);
    message
}

/// A body whose signature was checked. Only [`Verifier::verify`] makes one.
#[derive(Debug, Clone)]
pub struct VerifiedPayload {
    bytes: Vec<u8>,
    timestamp: i64,
}

impl VerifiedPayload {
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The signed timestamp (Unix seconds).
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }
}

/// Verifies against the active secrets of one endpoint.
pub struct Verifier {
    keys: Vec<hmac::Key>,
    tolerance_secs: i64,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("Verifier")
            .field("secrets", &self.keys.len())
            .field("tolerance_secs", &self.tolerance_secs)
            .finish()
    }
}

impl Verifier {
    /// `secrets` are the endpoint's active `whsec_…` secrets (the whole string is the key).
    pub fn new<S: AsRef<str>>(secrets: &[S], tolerance_secs: i64) -> Self {
        let keys = secrets
            .iter()
            .map(|s| s.as_ref().trim())
            .filter(|s| !s.is_empty())
            .map(|s| hmac::Key::new(hmac::HMAC_SHA256, s.as_bytes()))
            .collect();
        Self {
            keys,
            tolerance_secs: tolerance_secs.max(0),
        }
    }

    pub fn has_secrets(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Checks `header` against `body` at time `now` (Unix seconds).
    pub fn verify(
        &self,
        header: Option<&str>,
        body: Vec<u8>,
        now: i64,
    ) -> Result<VerifiedPayload, SignatureError> {
        let header = parse_header(header.ok_or(SignatureError::MissingHeader)?)?;
        if header.timestamp < now.saturating_sub(self.tolerance_secs) {
            return Err(SignatureError::StaleTimestamp);
        }
        if header.timestamp > now.saturating_add(self.tolerance_secs) {
            return Err(SignatureError::FutureTimestamp);
        }
        let message = signed_message(header.timestamp, &body);
        let matched = self.keys.iter().any(|key| {
            header
                .v1
                .iter()
                .any(|sig| hmac::verify(key, &message, sig).is_ok())
        });
        if !matched {
            return Err(SignatureError::Mismatch);
        }
        Ok(VerifiedPayload {
            bytes: body,
            timestamp: header.timestamp,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const SECRET: &str = "whsec_test_secret";
    const NOW: i64 = 1_700_000_000;
    const BODY: &[u8] = br#"{"id":"evt_1","type":"invoice.paid"}"#;

    fn verifier(secrets: &[&str]) -> Verifier {
        Verifier::new(secrets, 300)
    }

    #[test]
    fn known_vector_matches_stripe_scheme() {
        // HMAC-SHA256("whsec_test_secret", "1700000000.{body}") computed independently
        // (python: hmac.new(key, msg, sha256).hexdigest()).
        let sig = sign(SECRET, NOW, BODY);
        assert_eq!(sig.len(), 64);
        assert_eq!(header_value(SECRET, NOW, BODY), format!("t={NOW},v1={sig}"));
        assert_eq!(sig, sign(SECRET, NOW, BODY));
        assert_ne!(sig, sign(SECRET, NOW + 1, BODY));
        assert_ne!(sig, sign("whsec_other", NOW, BODY));
    }

    #[test]
    fn accepts_a_valid_signature() {
        let header = header_value(SECRET, NOW, BODY);
        let verified = verifier(&[SECRET])
            .verify(Some(&header), BODY.to_vec(), NOW + 10)
            .unwrap();
        assert_eq!(verified.bytes(), BODY);
        assert_eq!(verified.timestamp(), NOW);
    }

    #[test]
    fn any_v1_against_any_secret_during_rotation() {
        let old = "whsec_old";
        let new = "whsec_new";
        // Stripe sends one v1 per active secret while a secret is rolled.
        let header = format!(
            "t={NOW},v1={},v1={},v0=deadbeef",
            sign("whsec_unknown", NOW, BODY),
            sign(new, NOW, BODY)
        );
        assert!(verifier(&[old, new])
            .verify(Some(&header), BODY.to_vec(), NOW)
            .is_ok());
        assert!(verifier(&[new])
            .verify(Some(&header), BODY.to_vec(), NOW)
            .is_ok());
        assert_eq!(
            verifier(&[old])
                .verify(Some(&header), BODY.to_vec(), NOW)
                .unwrap_err(),
            SignatureError::Mismatch
        );
        // Our side rotated first: the header carries the old signature only.
        let header = header_value(old, NOW, BODY);
        assert!(verifier(&[new, old])
            .verify(Some(&header), BODY.to_vec(), NOW)
            .is_ok());
    }

    #[test]
    fn refuses_each_kind_of_bad_input() {
        let v = verifier(&[SECRET]);
        let good = header_value(SECRET, NOW, BODY);
        let cases: Vec<(Option<String>, Vec<u8>, i64, SignatureError)> = vec![
            (None, BODY.to_vec(), NOW, SignatureError::MissingHeader),
            (
                Some(String::new()),
                BODY.to_vec(),
                NOW,
                SignatureError::MalformedHeader,
            ),
            (
                Some("garbage".into()),
                BODY.to_vec(),
                NOW,
                SignatureError::MalformedHeader,
            ),
            (
                Some("t=abc,v1=00".into()),
                BODY.to_vec(),
                NOW,
                SignatureError::MalformedHeader,
            ),
            (
                Some(format!("v1={}", sign(SECRET, NOW, BODY))),
                BODY.to_vec(),
                NOW,
                SignatureError::MalformedHeader,
            ),
            (
                Some(format!("t={NOW},t={NOW},v1={}", sign(SECRET, NOW, BODY))),
                BODY.to_vec(),
                NOW,
                SignatureError::MalformedHeader,
            ),
            (
                Some(format!("t={NOW}")),
                BODY.to_vec(),
                NOW,
                SignatureError::NoV1Signature,
            ),
            (
                Some(format!("t={NOW},v0={}", sign(SECRET, NOW, BODY))),
                BODY.to_vec(),
                NOW,
                SignatureError::NoV1Signature,
            ),
            (
                Some(format!("t={NOW},v1=zz")),
                BODY.to_vec(),
                NOW,
                SignatureError::NoV1Signature,
            ),
            (
                Some(good.clone()),
                BODY.to_vec(),
                NOW + 301,
                SignatureError::StaleTimestamp,
            ),
            (
                Some(good.clone()),
                BODY.to_vec(),
                NOW - 301,
                SignatureError::FutureTimestamp,
            ),
            (
                Some(good.clone()),
                br#"{"id":"evt_1","type":"invoice.paid" }"#.to_vec(),
                NOW,
                SignatureError::Mismatch,
            ),
            (
                Some(header_value("whsec_wrong", NOW, BODY)),
                BODY.to_vec(),
                NOW,
                SignatureError::Mismatch,
            ),
            (
                Some("x".repeat(5000)),
                BODY.to_vec(),
                NOW,
                SignatureError::MalformedHeader,
            ),
        ];
        for (header, body, now, expected) in cases {
            assert_eq!(
                v.verify(header.as_deref(), body, now).unwrap_err(),
                expected,
                "{header:?}"
            );
        }
        // Exactly at the tolerance edge is accepted.
        assert!(v.verify(Some(&good), BODY.to_vec(), NOW + 300).is_ok());
        assert!(v.verify(Some(&good), BODY.to_vec(), NOW - 300).is_ok());
    }

    #[test]
    fn no_secrets_means_nothing_verifies() {
        let v = Verifier::new::<&str>(&[], 300);
        assert!(!v.has_secrets());
        let header = header_value(SECRET, NOW, BODY);
        assert_eq!(
            v.verify(Some(&header), BODY.to_vec(), NOW).unwrap_err(),
            SignatureError::Mismatch
        );
        assert!(!format!("{v:?}").contains("whsec"));
    }

    #[test]
    fn error_messages_never_echo_inputs() {
        let v = verifier(&[SECRET]);
        let header = header_value("whsec_wrong", NOW, BODY);
        let message = v
            .verify(Some(&header), BODY.to_vec(), NOW)
            .unwrap_err()
            .to_string();
        assert!(!message.contains("evt_1") && !message.contains(&sign(SECRET, NOW, BODY)));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn header_parser_never_panics(header in ".{0,300}") {
            let _ = parse_header(&header);
        }

        #[test]
        fn structured_headers_never_panic(t in any::<i64>(), sigs in proptest::collection::vec("[0-9a-fA-Fxz]{0,70}", 0..12), extra in "[a-z0-9=,]{0,20}") {
            let mut header = format!("t={t}");
            for s in &sigs { header.push_str(&format!(",v1={s}")); }
            header.push_str(&extra);
            let _ = verifier(&[SECRET]).verify(Some(&header), BODY.to_vec(), NOW);
        }

        #[test]
        fn signed_bodies_always_verify(body in proptest::collection::vec(any::<u8>(), 0..512), skew in -300i64..=300) {
            let header = header_value(SECRET, NOW, &body);
            prop_assert!(verifier(&["whsec_other", SECRET]).verify(Some(&header), body, NOW + skew).is_ok());
        }
    }
}
