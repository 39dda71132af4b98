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

/// CSCX's accounts for the fake's seeded companies, each managed by `csm`, as the platform
/// would send them on `cscx.accounts` (message id `account-<id>`).
pub fn cscx_accounts(
    truth: &stripe_fake::Truth,
    csm: &str,
    at_ms: i64,
) -> Vec<(String, contracts::v1::CscxAccountUpserted)> {
    truth
        .companies
        .iter()
        .map(|company| {
            let account = contracts::v1::CscxAccountUpserted {
                account_id: company.company_id.clone(),
                name: company.name.clone(),
                domains: vec![company.domain.clone()],
                csm_user_id: csm.into(),
                updated_at_ms: at_ms,
                ..Default::default()
            };
            (format!("account-{}", company.company_id), account)
        })
        .collect()
}
