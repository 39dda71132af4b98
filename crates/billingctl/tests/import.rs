//! `billingctl import-accounts` against the real broker: good rows are published (with
//! confirms) to the matcher's queue, bad rows are reported by line and publish nothing, and
//! re-importing the same file repeats the same message ids.

use std::collections::BTreeSet;

use lapin::options::BasicGetOptions;
use platform::testing::TestEnv;

fn run(env: &TestEnv, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_billingctl"))
        .args(args)
        .env("AMQP_URL", &env.common.amqp.url)
        .env("DATABASE_URL", &env.common.database.url)
        .env("BILLING__AMQP__NAMESPACE", &env.common.amqp.namespace)
        .env(
            "BILLING__AMQP__DELIVERY_LIMIT",
            env.common.amqp.delivery_limit.to_string(),
        )
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn imports_good_rows_and_reports_bad_ones_by_line() {
    let env = TestEnv::new();
    let dir = std::env::temp_dir().join(format!("import-{}", env.id));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("accounts.csv");
    std::fs::write(
        &file,
        "account_id,name,domains,external_ids,csm_user_id\nacc_1,Acme Inc,acme.com,,csm-1\nacc_2,,globex.com,,\nacc_3,Initech,initech.com;initech.de,,\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();

    let (ok, out) = run(
        &env,
        &["import-accounts", path, "--tenant", "tenant-a", "--dry-run"],
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("accounts.csv:3: rejected: account acc_2: missing name"),
        "{out}"
    );
    assert!(out.contains("2 account(s) valid (dry run"), "{out}");

    for _ in 0..2 {
        let (ok, out) = run(&env, &["import-accounts", path, "--tenant", "tenant-a"]);
        assert!(ok, "{out}");
        assert!(
            out.contains("2 account(s) published, 1 row(s) rejected"),
            "{out}"
        );
    }

    let broker = platform::amqp::Broker::new(env.common.amqp.clone(), matcher::spec().topology);
    let conn = broker.connection().await.unwrap();
    let channel = conn.create_channel().await.unwrap();
    let mut ids = Vec::new();
    while let Some(got) = channel
        .basic_get(
            broker.name("matcher.accounts").into(),
            BasicGetOptions { no_ack: true },
        )
        .await
        .unwrap()
    {
        ids.push(
            got.delivery
                .properties
                .message_id()
                .clone()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(
        ids.len(),
        4,
        "two imports of two good rows (dry run published nothing)"
    );
    let distinct: BTreeSet<_> = ids.iter().collect();
    assert_eq!(
        distinct.len(),
        2,
        "a re-import repeats message ids, so the matcher applies it once"
    );
    let _ = std::fs::remove_dir_all(&dir);
    env.cleanup(&[&broker]).await;
}
