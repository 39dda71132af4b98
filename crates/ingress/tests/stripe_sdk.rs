//! Our webhook signatures agree with Stripe's official SDK (Python `stripe`, installed by
//! scripts/dev-deps.sh) in both directions.

use domain::webhook_signature::{header_value, Verifier};

const SECRET: &str = "whsec_sdk_agreement_test";

fn python(code: &str, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(code)
        .args(args)
        .output()
        .expect("python3 runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn body(now: i64) -> String {
    serde_json::json!({"id": "evt_sdk_1", "object": "event", "type": "invoice.payment_failed", "created": now,
        "data": {"object": {"id": "in_1", "customer": "cus_1", "amount_due": 10000, "attempt_count": 2}}})
    .to_string()
}

#[test]
fn stripe_sdk_accepts_our_signatures() {
    let now = chrono::Utc::now().timestamp();
    let payload = body(now);
    let header = header_value(SECRET, now, payload.as_bytes());
    let code = "import sys, stripe\nev = stripe.Webhook.construct_event(sys.argv[1], sys.argv[2], sys.argv[3])\nprint(ev['id'])";
    let (ok, out) = python(code, &[&payload, &header, SECRET]);
    assert!(ok && out.trim() == "evt_sdk_1", "{out}");
    // And it refuses a tampered body, as we do.
    let (ok, out) = python(code, &[&payload.replace("10000", "1"), &header, SECRET]);
    assert!(!ok && out.contains("SignatureVerificationError"), "{out}");
}

#[test]
fn we_accept_signatures_computed_by_the_stripe_sdk() {
    let now = chrono::Utc::now().timestamp();
    let payload = body(now);
    let code = "import sys, stripe\nt = sys.argv[2]\nsig = stripe.WebhookSignature._compute_signature(t + '.' + sys.argv[1], sys.argv[3])\nprint(f't={t},v1={sig}')";
    let (ok, out) = python(code, &[&payload, &now.to_string(), SECRET]);
    assert!(ok, "{out}");
    let header = out.trim().to_string();
    let verifier = Verifier::new(&[SECRET], 300);
    assert!(
        verifier
            .verify(Some(&header), payload.clone().into_bytes(), now)
            .is_ok(),
        "{header}"
    );
    assert!(verifier
        .verify(
            Some(&header),
            payload.replace("10000", "1").into_bytes(),
            now
        )
        .is_err());
    assert!(Verifier::new(&["whsec_other"], 300)
        .verify(Some(&header), payload.into_bytes(), now)
        .is_err());
}
