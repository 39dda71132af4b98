//! Disputes through the risk-engine binary over the real broker and Postgres: a
//! `DisputeChanged` raises `dispute_opened` once (duplicates, replays under new ids and a
//! stale fact never add or re-open one), alerts the CSM once, moves with the dispute's status
//! (chargeback → under review) and resolves with the outcome (`dispute_lost`,
//! `dispute_won`) while health follows; an unreadable dispute fact is dead-lettered.

use std::time::Duration;

use chrono::Utc;
use contracts::v1;
use diesel_async::RunQueryDsl as _;

mod support;
use support::Harness;

const TENANT: &str = "tenant-risk-disputes";
const OBSERVER: &str = "test.risk-dispute-events";
const CUSTOMER: &str = "cus_dispute1";

fn dispute(id: &str, at: i64, status: &str, source: &str) -> v1::DisputeChanged {
    v1::DisputeChanged {
        context: Some(v1::FactContext {
            tenant_id: TENANT.into(),
            account_id: "acct_platform".into(),
            occurred_at: at,
            source: source.into(),
            event_id: format!("evt_{id}_{at}"),
        }),
        stripe_customer_id: CUSTOMER.into(),
        dispute_id: id.into(),
        charge_id: format!("ch_{id}"),
        payment_intent_id: format!("pi_{id}"),
        amount: 49_000,
        currency: "usd".into(),
        reason: "fraudulent".into(),
        status: status.into(),
        evidence_due_by: at + 7 * 86_400,
        created: at,
    }
}

#[derive(diesel::QueryableByName, Debug, PartialEq)]
struct SignalRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    cause_key: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    severity: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    resolved_reason: Option<String>,
}

impl Harness {
    /// Every dispute signal stored, oldest first.
    async fn signals(&self) -> Vec<SignalRow> {
        let mut conn = self.pool.get().await.unwrap();
        diesel::sql_query(
            "SELECT cause_key, severity, resolution AS resolved_reason FROM risk.signals \
             WHERE tenant_id = $1 AND kind = 'dispute_opened' ORDER BY raised_at, id",
        )
        .bind::<diesel::sql_types::Text, _>(TENANT)
        .load(&mut conn)
        .await
        .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dispute_raises_once_moves_with_its_status_and_resolves_with_its_outcome() {
    let mut h = Harness::start(TENANT, OBSERVER).await;

    // Ana wants chargebacks on her accounts; the customer is linked to her account.
    h.send(&v1::AlertRuleRequested {
        request_id: "rule-req-d".into(),
        rule_id: "rule-ana-disputes".into(),
        csm_user_id: "csm-ana".into(),
        kinds: vec!["dispute_opened".into()],
        min_severity: "low".into(),
        scope: "mine".into(),
        delivery: "immediate".into(),
        actor: "csm-ana".into(),
        ..Default::default()
    })
    .await;
    h.send(&v1::CustomerLinkChanged {
        tenant_id: TENANT.into(),
        stripe_account_id: "acct_platform".into(),
        stripe_customer_id: CUSTOMER.into(),
        account_id_after: "acc_acme".into(),
        status: "linked".into(),
        method: "email_domain".into(),
        confidence: 0.95,
        csm_user_id: "csm-ana".into(),
        version: 1,
        ..Default::default()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let t0 = Utc::now().timestamp() - 600;
    // 1. A chargeback opens: Critical, one alert, health drops by its full weight (50).
    h.send(&dispute("dp_1", t0, "needs_response", "event"))
        .await;
    h.wait("dispute raised, alerted, health down", |s| {
        s.raised.iter().any(|r| r.kind == "dispute_opened")
            && !s.alerts.is_empty()
            && s.health.iter().any(|hc| hc.score < 100)
    })
    .await;
    let opened = h.seen.raised[0].clone();
    assert_eq!(opened.cause_key, "dispute:dp_1");
    assert_eq!(opened.severity, "critical");
    assert!(!opened.escalated);
    assert_eq!(opened.account_id, "acc_acme");
    assert_eq!(opened.csm_user_id, "csm-ana");
    assert_eq!(opened.objects, ["dp_1", "ch_dp_1"]);
    assert!(
        opened
            .summary
            .starts_with("Dispute of 490.00 USD opened (fraudulent)"),
        "{}",
        opened.summary
    );
    let evidence: serde_json::Value = serde_json::from_str(&opened.evidence_json).unwrap();
    assert!(
        opened.evidence_json.contains("needs_response"),
        "{evidence}"
    );
    assert_eq!(h.seen.alerts.len(), 1);
    assert_eq!(h.seen.alerts[0].signal_id, opened.signal_id);
    let open_health = h.seen.health.last().unwrap().clone();
    assert_eq!(open_health.score, 50, "{open_health:?}");
    assert_eq!(open_health.band, "at_risk");

    // 2. Replays: the same state under new message ids (reconciliation, a second cause)
    //    and a backfill of it change nothing: one signal, one alert, no new event.
    h.send(&dispute("dp_1", t0, "needs_response", "event"))
        .await;
    h.send(&dispute("dp_1", t0, "needs_response", "reconcile"))
        .await;
    h.settle().await;
    assert_eq!(h.seen.raised.len(), 1, "{:?}", h.seen.raised);
    assert_eq!(h.seen.alerts.len(), 1);
    assert_eq!(h.signals().await.len(), 1);

    // 3. Evidence submitted: the same signal, now High; no second alert.
    h.send(&dispute("dp_1", t0 + 100, "under_review", "event"))
        .await;
    h.wait("under review", |s| {
        s.raised
            .iter()
            .any(|r| r.cause_key == "dispute:dp_1" && r.severity == "high")
    })
    .await;
    let reviewed = h.seen.raised.last().unwrap().clone();
    assert_eq!(reviewed.signal_id, opened.signal_id);
    assert!(reviewed.escalated, "an update of the open signal");

    // 4. A stale fact (the opening, delivered late under its own id) does not take it
    //    back to needs_response.
    h.send(&dispute("dp_1", t0 + 50, "needs_response", "event"))
        .await;
    h.settle().await;
    assert_eq!(h.seen.raised.len(), 2, "{:?}", h.seen.raised);
    assert_eq!(
        h.signals().await,
        [SignalRow {
            cause_key: "dispute:dp_1".into(),
            severity: "high".into(),
            resolved_reason: None
        }]
    );

    // 5. Lost: resolved `dispute_lost`; health recovers (half the deduction at once).
    let reviewed_score = h.seen.health.last().unwrap().score;
    h.send(&dispute("dp_1", t0 + 200, "lost", "event")).await;
    h.wait("resolved lost", |s| {
        s.resolved
            .iter()
            .any(|r| r.cause_key == "dispute:dp_1" && r.reason == "dispute_lost")
    })
    .await;
    h.wait("health recovers", |s| {
        s.health.last().is_some_and(|hc| hc.score > reviewed_score)
    })
    .await;
    // Replayed after the close (and a stale under_review): nothing re-opens.
    h.send(&dispute("dp_1", t0 + 200, "lost", "reconcile"))
        .await;
    h.send(&dispute("dp_1", t0 + 150, "under_review", "event"))
        .await;
    h.settle().await;
    assert_eq!(h.seen.resolved.len(), 1, "{:?}", h.seen.resolved);
    assert_eq!(h.seen.raised.len(), 2, "{:?}", h.seen.raised);
    assert_eq!(
        h.signals().await,
        [SignalRow {
            cause_key: "dispute:dp_1".into(),
            severity: "high".into(),
            resolved_reason: Some("dispute_lost".into())
        }]
    );

    // 6. A backfilled open dispute is scored but not alerted (old news); won resolves it.
    h.send(&dispute("dp_2", t0 + 300, "needs_response", "backfill"))
        .await;
    h.wait("second dispute", |s| {
        s.raised.iter().any(|r| r.cause_key == "dispute:dp_2")
    })
    .await;
    h.settle().await;
    assert_eq!(h.seen.alerts.len(), 1, "no alert from backfill");
    h.send(&dispute("dp_2", t0 + 400, "won", "event")).await;
    h.wait("resolved won", |s| {
        s.resolved
            .iter()
            .any(|r| r.cause_key == "dispute:dp_2" && r.reason == "dispute_won")
    })
    .await;
    let signals = h.signals().await;
    assert_eq!(signals.len(), 2);
    assert!(signals.iter().all(|s| s.resolved_reason.is_some()));

    // 7. Unreadable dispute facts are dead-lettered and change nothing.
    let mut bad_status = dispute("dp_3", t0 + 500, "needs_response", "event");
    bad_status.status = "open".into();
    h.send_as(&bad_status, "bad-dispute-status", TENANT).await;
    let mut no_customer = dispute("dp_4", t0 + 500, "needs_response", "event");
    no_customer.stripe_customer_id = String::new();
    h.send_as(&no_customer, "dispute-no-customer", TENANT).await;
    let mut depth = 0;
    for _ in 0..100 {
        depth = h
            .broker
            .queue_depth("risk-engine.billing.dlq")
            .await
            .unwrap();
        if depth >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(depth, 2);
    assert_eq!(h.signals().await.len(), 2);

    let status = h.engine.take().unwrap().terminate();
    assert!(status.success(), "{status}");
    h.env.cleanup(&[&*h.broker]).await;
}
