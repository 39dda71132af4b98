//! Whole-system proofs over the real Postgres, RabbitMQ and the Stripe fake: what the
//! chaos run compares (`compare`, `stripe_truth`, `held`) and the faults it injects
//! into the infrastructure (`infra`). The tests themselves are in `tests/`.

pub mod compare;
pub mod held;
pub mod infra;
pub mod stripe_truth;

/// A workspace binary beside the running test's executable (`target/debug/<name>`).
pub fn workspace_binary(name: &str) -> String {
    let exe = std::env::current_exe().expect("the test's own path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("tests run from target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} missing: build the services first (`cargo build --workspace --bins`; `make test` does)",
        path.display()
    );
    path.to_string_lossy().into_owned()
}
