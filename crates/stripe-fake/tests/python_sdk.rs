//! Proof of fidelity: the official Stripe Python SDK (installed by scripts/dev-deps.sh) drives
//! this fake — creates objects, paginates, expands, hits errors — and checks the fields.

#[test]
fn official_python_sdk_agrees_with_the_fake() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/sdk_fidelity.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .env("STRIPE_FAKE_BIN", env!("CARGO_BIN_EXE_stripe-fake"))
        .output()
        .expect("python3 runs (scripts/dev-deps.sh installs the stripe package)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "SDK fidelity failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}
