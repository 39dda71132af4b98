//! The few fields of a verified Stripe event that ingress needs; the rest travels untouched.

use domain::webhook_signature::VerifiedPayload;
use ring::digest;
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Stripe's `evt_…`, or for events Stripe sends without an id (`invoice.upcoming`) a
    /// `noid_…` key derived from the body, so an identical redelivery is still stored once.
    pub event_id: String,
    pub event_type: String,
    pub account: Option<String>,
    pub created: i64,
    pub livemode: bool,
    pub api_version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("body is not a JSON object")]
    NotJson,
    #[error("missing or invalid field `{0}`")]
    Field(&'static str),
}

#[derive(Deserialize)]
struct Raw {
    #[serde(default)]
    id: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    #[serde(default)]
    account: Option<String>,
    created: Option<i64>,
    #[serde(default)]
    livemode: bool,
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    object: Option<String>,
}

const MAX_FIELD_LEN: usize = 255;

fn valid_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_FIELD_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Reads the envelope of a verified body.
pub fn parse(payload: &VerifiedPayload) -> Result<Envelope, EnvelopeError> {
    let raw: Raw = serde_json::from_slice(payload.bytes()).map_err(|_| EnvelopeError::NotJson)?;
    if raw.object.as_deref().is_some_and(|o| o != "event") {
        return Err(EnvelopeError::Field("object"));
    }
    let event_type = raw
        .event_type
        .filter(|t| valid_token(t))
        .ok_or(EnvelopeError::Field("type"))?;
    let created = raw
        .created
        .filter(|c| *c > 0)
        .ok_or(EnvelopeError::Field("created"))?;
    let account = match raw.account {
        Some(a) if a.starts_with("acct_") && valid_token(&a) => Some(a),
        Some(_) => return Err(EnvelopeError::Field("account")),
        None => None,
    };
    let event_id = match raw.id {
        Some(id) if id.starts_with("evt_") && valid_token(&id) => id,
        Some(_) => return Err(EnvelopeError::Field("id")),
        // Stripe documents id-less events (invoice.upcoming); anything else must have one.
        None if event_type == "invoice.upcoming" => {
            let hash = digest::digest(&digest::SHA256, payload.bytes());
            format!("noid_{}", &hex::encode(hash.as_ref())[..32])
        }
        None => return Err(EnvelopeError::Field("id")),
    };
    let api_version = raw.api_version.filter(|v| v.len() <= MAX_FIELD_LEN);
    Ok(Envelope {
        event_id,
        event_type,
        account,
        created,
        livemode: raw.livemode,
        api_version,
    })
}

#[cfg(test)]
mod tests {
    use domain::webhook_signature::{header_value, Verifier};
    use proptest::prelude::*;

    use super::*;

    fn verified(body: &[u8]) -> VerifiedPayload {
        let header = header_value("whsec_x", 1_700_000_000, body);
        Verifier::new(&["whsec_x"], 300)
            .verify(Some(&header), body.to_vec(), 1_700_000_000)
            .unwrap()
    }

    #[test]
    fn reads_a_stripe_event() {
        let body = br#"{"id":"evt_1","object":"event","type":"invoice.payment_failed","created":1700000000,"livemode":false,"api_version":"2025-03-31.basil","account":"acct_9","data":{"object":{"id":"in_1"}}}"#;
        let env = parse(&verified(body)).unwrap();
        assert_eq!(env.event_id, "evt_1");
        assert_eq!(env.event_type, "invoice.payment_failed");
        assert_eq!(env.account.as_deref(), Some("acct_9"));
        assert_eq!(env.created, 1_700_000_000);
        assert_eq!(env.api_version.as_deref(), Some("2025-03-31.basil"));
    }

    #[test]
    fn unknown_types_are_accepted() {
        let body = br#"{"id":"evt_2","type":"brand_new.thing_happened","created":1}"#;
        assert_eq!(
            parse(&verified(body)).unwrap().event_type,
            "brand_new.thing_happened"
        );
    }

    #[test]
    fn upcoming_invoice_without_id_gets_a_stable_key() {
        let body = br#"{"object":"event","type":"invoice.upcoming","created":1700000000,"data":{"object":{"customer":"cus_1"}}}"#;
        let a = parse(&verified(body)).unwrap();
        let b = parse(&verified(body)).unwrap();
        assert!(a.event_id.starts_with("noid_"));
        assert_eq!(a.event_id, b.event_id);
    }

    #[test]
    fn malformed_envelopes_are_refused() {
        let cases: &[(&[u8], EnvelopeError)] = &[
            (b"not json", EnvelopeError::NotJson),
            (b"[1,2]", EnvelopeError::NotJson),
            (
                br#"{"type":"invoice.paid","created":1}"#,
                EnvelopeError::Field("id"),
            ),
            (
                br#"{"id":"evt_1","created":1}"#,
                EnvelopeError::Field("type"),
            ),
            (
                br#"{"id":"evt_1","type":"invoice.paid"}"#,
                EnvelopeError::Field("created"),
            ),
            (
                br#"{"id":"cus_1","type":"invoice.paid","created":1}"#,
                EnvelopeError::Field("id"),
            ),
            (
                br#"{"id":"evt_1","type":"in voice","created":1}"#,
                EnvelopeError::Field("type"),
            ),
            (
                br#"{"id":"evt_1","type":"invoice.paid","created":1,"account":"cus_1"}"#,
                EnvelopeError::Field("account"),
            ),
            (
                br#"{"id":"evt_1","type":"invoice.paid","created":1,"object":"customer"}"#,
                EnvelopeError::Field("object"),
            ),
            (
                br#"{"id":7,"type":"invoice.paid","created":1}"#,
                EnvelopeError::NotJson,
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(
                &parse(&verified(body)).unwrap_err(),
                expected,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn never_panics_on_arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse(&verified(&body));
        }

        #[test]
        fn never_panics_on_json_like_bodies(id in ".{0,20}", ty in ".{0,20}", created in any::<i64>(), account in proptest::option::of(".{0,12}")) {
            let body = serde_json::json!({"id": id, "type": ty, "created": created, "account": account}).to_string();
            let _ = parse(&verified(body.as_bytes()));
        }
    }
}
