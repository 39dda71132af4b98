//! The matcher binary over the real broker and Postgres: accounts and customer facts in
//! (each delivered twice), links and their changes out on `matching`; re-matching when an
//! account arrives after its customer or a customer's email changes; manual decisions that
//! win over the rules and survive re-syncs; bad messages dead-lettered with the reason.

use std::collections::HashMap;
use std::time::Duration;

use contracts::{exchanges, v1, Contract};
use diesel_async::RunQueryDsl as _;
use lapin::options::BasicGetOptions;
use platform::amqp::{Broker, Outgoing, Publisher, QueueSpec};
use platform::db;
use platform::testing::{ServiceProcess, TestEnv};
use prost::Message as _;

const TENANT: &str = "tenant-match";
const OBSERVER: &str = "test.links";

#[derive(diesel::QueryableByName, Debug, Clone, PartialEq)]
struct LinkView {
    #[diesel(sql_type = diesel::sql_types::Text)]
    stripe_customer_id: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    account_id: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Text)]
    status: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    method: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    csm_user_id: Option<String>,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    version: i64,
}

struct Harness {
    env: TestEnv,
    pool: db::PgPool,
    broker: std::sync::Arc<Broker>,
    publisher: Publisher,
    matcher: Option<ServiceProcess>,
    clock: i64,
}

impl Harness {
    async fn links(&self) -> HashMap<String, LinkView> {
        let mut conn = self.pool.get().await.unwrap();
        let rows: Vec<LinkView> = diesel::sql_query(
            "SELECT stripe_customer_id, account_id, status, method, csm_user_id, version \
             FROM matching.customer_links WHERE tenant_id = $1",
        )
        .bind::<diesel::sql_types::Text, _>(TENANT)
        .load(&mut conn)
        .await
        .unwrap_or_default();
        rows.into_iter()
            .map(|r| (r.stripe_customer_id.clone(), r))
            .collect()
    }

    /// Polls until `check` holds for the links; on timeout shows the matcher's log.
    async fn wait(&mut self, what: &str, check: impl Fn(&HashMap<String, LinkView>) -> bool) {
        for _ in 0..200 {
            if check(&self.links().await) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let log = self
            .matcher
            .take()
            .map(|m| m.terminate_with_stderr().1)
            .unwrap_or_default();
        panic!(
            "never {what}: {:#?}\nmatcher log:\n{log}",
            self.links().await
        );
    }

    async fn send<M: Contract>(&self, message: &M, id: &str, tenant: &str) {
        self.publisher
            .publish(&Outgoing::protobuf(
                M::EXCHANGE,
                message.routing_key(),
                id,
                M::TYPE,
                tenant,
                message.encode_to_vec(),
            ))
            .await
            .unwrap();
    }

    async fn account(&mut self, id: &str, name: &str, domains: &[&str], csm: &str) {
        self.clock += 1;
        let account = v1::CscxAccountUpserted {
            account_id: id.into(),
            name: name.into(),
            domains: domains.iter().map(|d| (*d).into()).collect(),
            external_ids: Vec::new(),
            csm_user_id: csm.into(),
            updated_at_ms: self.clock * 1000,
        };
        let message_id = format!("acct:{id}:{}", self.clock);
        // Every message twice: the inbox absorbs the repeat.
        self.send(&account, &message_id, TENANT).await;
        self.send(&account, &message_id, TENANT).await;
    }

    async fn customer(&mut self, id: &str, email: &str, name: &str, metadata: &[(&str, &str)]) {
        self.clock += 1;
        let fact = v1::CustomerUpserted {
            context: Some(v1::FactContext {
                tenant_id: TENANT.into(),
                account_id: "acct_platform".into(),
                occurred_at: self.clock,
                source: "event".into(),
                event_id: format!("evt_{}", self.clock),
            }),
            stripe_customer_id: id.into(),
            email: email.into(),
            name: name.into(),
            metadata: metadata
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            ..Default::default()
        };
        let message_id = format!("customer:{id}:{}", self.clock);
        self.send(&fact, &message_id, TENANT).await;
        self.send(&fact, &message_id, TENANT).await;
    }

    async fn decide(
        &mut self,
        customer: &str,
        action: v1::manual_decision_requested::Action,
        account: &str,
    ) {
        self.clock += 1;
        let request = v1::ManualDecisionRequested {
            request_id: format!("req-{}", self.clock),
            stripe_customer_id: customer.into(),
            action: action as i32,
            account_id: account.into(),
            actor: "alice@cs".into(),
            note: "checked with finance".into(),
            requested_at_ms: self.clock,
        };
        let id = request.request_id.clone();
        self.send(&request, &id, TENANT).await;
    }

    /// Link changes published so far, per customer: (version, account after, status).
    async fn drain_link_messages(&self) -> Vec<v1::CustomerLinkChanged> {
        let conn = self.broker.connection().await.unwrap();
        let channel = conn.create_channel().await.unwrap();
        let mut out = Vec::new();
        while let Some(got) = channel
            .basic_get(
                self.broker.name(OBSERVER).into(),
                BasicGetOptions { no_ack: true },
            )
            .await
            .unwrap()
        {
            assert_eq!(
                got.delivery
                    .properties
                    .kind()
                    .as_ref()
                    .map(|k| k.to_string()),
                Some(v1::CustomerLinkChanged::TYPE.to_owned())
            );
            out.push(v1::CustomerLinkChanged::decode(got.delivery.data.as_slice()).unwrap());
        }
        out
    }
}

fn link<'a>(links: &'a HashMap<String, LinkView>, id: &str) -> Option<&'a LinkView> {
    links.get(id)
}

fn linked_to(links: &HashMap<String, LinkView>, id: &str, account: &str, status: &str) -> bool {
    link(links, id).is_some_and(|l| l.account_id.as_deref() == Some(account) && l.status == status)
}

#[tokio::test(flavor = "multi_thread")]
async fn links_follow_accounts_customers_and_people() {
    use v1::manual_decision_requested::Action;

    let env = TestEnv::new();
    let url = env.common.database.url.clone();
    db::ensure_database(&url).await.unwrap();
    db::migrate(&url, "matching", matcher::MIGRATIONS)
        .await
        .unwrap();
    let pool = db::pool(&env.common.database).unwrap();
    let topology = matcher::spec()
        .topology
        .queue(QueueSpec::new(OBSERVER).bind(exchanges::MATCHING, "link.changed"));
    let broker = Broker::new(env.common.amqp.clone(), topology);
    broker.connection().await.unwrap();
    let publisher = Publisher::new(broker.clone());
    let mut matcher = ServiceProcess::spawn(env!("CARGO_BIN_EXE_matcher"), "matcher", &env, &[]);
    matcher.wait_for_status("/readyz", 200).await;
    let mut h = Harness {
        env,
        pool,
        broker,
        publisher,
        matcher: Some(matcher),
        clock: 1_700_000_000,
    };

    // 1. Accounts, then customers: each rule links, free mail never does.
    h.account("acc_acme", "Acme Inc", &["https://www.acme.com"], "csm-ann")
        .await;
    h.account("acc_globex", "Globex Corporation", &["globex.com"], "")
        .await;
    h.customer("cus_domain", "ap@billing.acme.com", "Accounts Payable", &[])
        .await;
    h.customer(
        "cus_meta",
        "ops@unrelated.io",
        "Someone",
        &[("cscx_account_id", "acc_globex")],
    )
    .await;
    h.customer("cus_name", "", "ACME, Inc.", &[]).await;
    h.customer("cus_free", "jane@gmail.com", "Jane Doe", &[])
        .await;
    h.customer("cus_later", "finance@initech.com", "Initech", &[])
        .await;
    h.wait("every customer decided", |l| {
        linked_to(l, "cus_domain", "acc_acme", "linked")
            && linked_to(l, "cus_meta", "acc_globex", "linked")
            && linked_to(l, "cus_name", "acc_acme", "linked")
            && link(l, "cus_free").is_some_and(|c| c.status == "unmatched")
            && link(l, "cus_later").is_some_and(|c| c.status == "unmatched")
    })
    .await;
    let links = h.links().await;
    assert_eq!(links["cus_domain"].method.as_deref(), Some("email_domain"));
    assert_eq!(links["cus_domain"].csm_user_id.as_deref(), Some("csm-ann"));
    assert_eq!(links["cus_meta"].method.as_deref(), Some("metadata_id"));
    assert_eq!(links["cus_name"].method.as_deref(), Some("company_name"));

    // 2. An account arriving after its customer links it (whole-tenant re-match).
    h.account("acc_initech", "Initech", &["initech.com"], "csm-bob")
        .await;
    h.wait("late account linked", |l| {
        linked_to(l, "cus_later", "acc_initech", "linked")
    })
    .await;

    // 3. A customer's email changes: re-matched to the new domain's account.
    h.customer("cus_name", "ap@globex.com", "ACME, Inc.", &[])
        .await;
    h.wait("email change re-matched", |l| {
        linked_to(l, "cus_name", "acc_globex", "linked")
    })
    .await;

    // 4. People decide: SET beats the rules and survives a re-sync; REJECT removes a link;
    //    CLEAR hands the customer back to the rules.
    h.decide("cus_free", Action::Set, "acc_acme").await;
    h.wait("manual link", |l| {
        linked_to(l, "cus_free", "acc_acme", "manual")
    })
    .await;
    h.customer("cus_free", "jane.doe@gmail.com", "Jane Doe", &[])
        .await;
    h.decide("cus_domain", Action::Reject, "acc_acme").await;
    h.wait("rejected link removed", |l| {
        link(l, "cus_domain").is_some_and(|c| c.status == "unmatched" && c.account_id.is_none())
    })
    .await;
    assert!(linked_to(
        &h.links().await,
        "cus_free",
        "acc_acme",
        "manual"
    ));
    h.decide("cus_domain", Action::Clear, "").await;
    h.wait("cleared back to the rules", |l| {
        linked_to(l, "cus_domain", "acc_acme", "linked")
    })
    .await;
    h.decide("cus_meta", Action::Reject, "").await;
    h.wait("belongs to no account", |l| {
        link(l, "cus_meta").is_some_and(|c| c.status == "rejected" && c.account_id.is_none())
    })
    .await;

    // 5. A CSM change moves with the link; a deleted account unlinks its customers.
    h.account("acc_initech", "Initech", &["initech.com"], "csm-cat")
        .await;
    h.wait("csm change republished", |l| {
        link(l, "cus_later").is_some_and(|c| c.csm_user_id.as_deref() == Some("csm-cat"))
    })
    .await;
    h.clock += 1;
    let deleted = v1::CscxAccountDeleted {
        account_id: "acc_initech".into(),
        deleted_at_ms: h.clock * 1000,
    };
    h.send(&deleted, "del-initech", TENANT).await;
    h.wait("deleted account unlinked", |l| {
        link(l, "cus_later").is_some_and(|c| c.status == "unmatched")
    })
    .await;

    // 6. Every change went out once, versions strictly increasing per customer, and the
    //    last message per customer agrees with the stored link.
    let mut messages = Vec::new();
    for _ in 0..50 {
        messages.extend(h.drain_link_messages().await);
        let latest = h.links().await;
        let mut last: HashMap<String, &v1::CustomerLinkChanged> = HashMap::new();
        for m in &messages {
            last.insert(m.stripe_customer_id.clone(), m);
        }
        if latest
            .values()
            .all(|l| last.get(&l.stripe_customer_id).map(|m| m.version) == Some(l.version))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let links = h.links().await;
    let mut versions: HashMap<String, Vec<i64>> = HashMap::new();
    for m in &messages {
        assert_eq!(m.tenant_id, TENANT);
        versions
            .entry(m.stripe_customer_id.clone())
            .or_default()
            .push(m.version);
    }
    for (customer, seen) in &versions {
        let expected: Vec<i64> = (1..=links[customer].version).collect();
        assert_eq!(seen, &expected, "{customer}: one message per version");
    }
    let manual = messages
        .iter()
        .find(|m| m.stripe_customer_id == "cus_free" && m.status == "manual")
        .unwrap();
    assert_eq!(manual.method, "manual");
    assert_eq!(manual.decided_by, "alice@cs");
    assert_eq!(manual.account_id_after, "acc_acme");
    assert_eq!(manual.csm_user_id, "csm-ann");

    // 7. Bad input: no tenant, or an unreadable payload, is dead-lettered with the reason
    //    and changes nothing.
    let before = h.links().await;
    h.send(
        &v1::CscxAccountUpserted {
            account_id: "acc_x".into(),
            name: "X".into(),
            ..Default::default()
        },
        "no-tenant",
        "",
    )
    .await;
    h.publisher
        .publish(&Outgoing::protobuf(
            exchanges::BILLING,
            "customer.upserted",
            "garbage",
            v1::CustomerUpserted::TYPE,
            TENANT,
            vec![0xff, 0xff, 0xff],
        ))
        .await
        .unwrap();
    for (queue, want) in [("matcher.accounts.dlq", 1), ("matcher.billing.dlq", 1)] {
        let mut depth = 0;
        for _ in 0..100 {
            depth = h.broker.queue_depth(queue).await.unwrap();
            if depth >= want {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(depth, want, "{queue}");
    }
    let conn = h.broker.connection().await.unwrap();
    let channel = conn.create_channel().await.unwrap();
    let dead = channel
        .basic_get(
            h.broker.name("matcher.accounts.dlq").into(),
            BasicGetOptions { no_ack: true },
        )
        .await
        .unwrap()
        .expect("dead letter");
    let reason = dead
        .delivery
        .properties
        .headers()
        .as_ref()
        .and_then(|t| match t.inner().get("x-dead-letter-reason") {
            Some(lapin::types::AMQPValue::LongString(s)) => {
                Some(String::from_utf8_lossy(s.as_bytes()).into_owned())
            }
            _ => None,
        })
        .unwrap_or_default();
    assert!(reason.contains("tenant_id"), "{reason}");
    assert_eq!(h.links().await, before);

    let status = h.matcher.take().unwrap().terminate();
    assert!(status.success(), "{status}");
    h.env.cleanup(&[&*h.broker]).await;
}
