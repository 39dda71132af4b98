//! The risk-engine binary over the real broker and Postgres: billing facts and a link in
//! (every message delivered twice, some replayed under new ids), signals, alerts and health
//! out on `risk`. A failed payment raises once and alerts its CSM once, a retry escalates
//! without a second alert, the payment resolves and health recovers; a downgrade carries its
//! MRR delta; the daily scan (time chosen by the test) finds a card about to expire; bad
//! messages are dead-lettered with the reason.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{TimeZone as _, Utc};
use contracts::v1;
use diesel_async::RunQueryDsl as _;

mod support;
use support::{Harness, Seen};

const TENANT: &str = "tenant-risk";
const OBSERVER: &str = "test.risk-events";
const CUSTOMER: &str = "cus_risk1";

fn context(at: i64, source: &str) -> Option<v1::FactContext> {
    Some(v1::FactContext {
        tenant_id: TENANT.into(),
        account_id: "acct_platform".into(),
        occurred_at: at,
        source: source.into(),
        event_id: format!("evt_{at}"),
    })
}

fn invoice(at: i64, status: &str, attempts: i64, remaining: i64, next: i64) -> v1::InvoiceUpdated {
    v1::InvoiceUpdated {
        context: context(at, "event"),
        stripe_customer_id: CUSTOMER.into(),
        stripe_invoice_id: "in_risk1".into(),
        stripe_subscription_id: "sub_risk1".into(),
        status: status.into(),
        amount_due: 49_000,
        amount_paid: 49_000 - remaining,
        amount_remaining: remaining,
        currency: "usd".into(),
        due_date: 0,
        paid_at: if status == "paid" { at } else { 0 },
        attempt_count: attempts,
        next_payment_attempt: next,
        billing_reason: "subscription_cycle".into(),
    }
}

impl Harness {
    async fn open_signals(&self) -> HashMap<String, String> {
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::Text)]
            kind: String,
            #[diesel(sql_type = diesel::sql_types::Text)]
            severity: String,
        }
        let mut conn = self.pool.get().await.unwrap();
        let rows: Vec<Row> = diesel::sql_query(
            "SELECT kind, severity FROM risk.account_signals WHERE tenant_id = $1 AND resolved_at IS NULL",
        )
        .bind::<diesel::sql_types::Text, _>(TENANT)
        .load(&mut conn)
        .await
        .unwrap();
        rows.into_iter().map(|r| (r.kind, r.severity)).collect()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn signals_alerts_and_health_from_billing_facts() {
    let mut h = Harness::start(TENANT, OBSERVER).await;

    let t0 = Utc::now().timestamp() - 600;
    // 1. Ana wants payment failures on her accounts; the customer is linked to her account.
    h.send(&v1::AlertRuleRequested {
        request_id: "rule-req-1".into(),
        rule_id: "rule-ana-payments".into(),
        csm_user_id: "csm-ana".into(),
        kinds: vec!["payment_failed".into()],
        min_severity: "medium".into(),
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

    // 2. The renewal fails (card declined), a retry is scheduled.
    h.send(&v1::PaymentAttempted {
        context: context(t0, "event"),
        stripe_customer_id: CUSTOMER.into(),
        charge_id: "ch_1".into(),
        payment_intent_id: "pi_1".into(),
        succeeded: false,
        amount: 49_000,
        currency: "usd".into(),
        failure_code: "card_declined".into(),
        failure_message: "Your card was declined.".into(),
        attempted_at: t0,
        ..Default::default()
    })
    .await;
    h.send(&invoice(t0 + 1, "open", 1, 49_000, t0 + 7 * 86_400))
        .await;
    // The charge and the invoice facts race (prefetch): the signal carries the decline code
    // once both are in, whichever came first.
    h.wait("payment failure raised, with its code, and alerted", |s| {
        s.raised
            .iter()
            .any(|r| r.kind == "payment_failed" && r.evidence_json.contains("card_declined"))
            && s.raised.iter().any(|r| r.kind == "dunning_in_progress")
            && !s.alerts.is_empty()
            && s.health.iter().any(|hc| hc.score < 100)
    })
    .await;
    let failed = h
        .seen
        .raised
        .iter()
        .rev()
        .find(|r| r.kind == "payment_failed")
        .unwrap()
        .clone();
    assert_eq!(failed.account_id, "acc_acme");
    assert_eq!(failed.csm_user_id, "csm-ana");
    assert_eq!(failed.cause_key, "invoice:in_risk1");
    assert!(failed.objects.contains(&"in_risk1".to_owned()));
    let evidence: serde_json::Value = serde_json::from_str(&failed.evidence_json).unwrap();
    assert!(failed.evidence_json.contains("card_declined"), "{evidence}");
    assert!(!failed.summary.is_empty());
    assert_eq!(
        h.seen.alerts.len(),
        1,
        "one alert: the rule covers payment_failed only"
    );
    assert_eq!(h.seen.alerts[0].csm_user_id, "csm-ana");
    assert_eq!(h.seen.alerts[0].signal_id, failed.signal_id);
    let first_score = h.seen.health.last().unwrap().score;
    assert_eq!(h.seen.health.last().unwrap().account_id, "acc_acme");

    // 3. The retry fails too: same signal escalated, no second alert. A replay of the same
    //    state under a new message id (reconciliation) changes nothing.
    h.send(&invoice(t0 + 100, "open", 2, 49_000, t0 + 14 * 86_400))
        .await;
    h.wait("escalation", |s| {
        s.raised
            .iter()
            .any(|r| r.kind == "payment_failed" && r.escalated && r.severity == "high")
    })
    .await;
    let escalated = h
        .seen
        .raised
        .iter()
        .rev()
        .find(|r| r.kind == "payment_failed")
        .unwrap();
    assert_eq!(
        escalated.signal_id, failed.signal_id,
        "same signal, new severity"
    );
    assert_eq!(escalated.severity, "high");
    h.send(&invoice(t0 + 100, "open", 2, 49_000, t0 + 14 * 86_400))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    h.drain().await;
    assert_eq!(
        h.seen.alerts.len(),
        1,
        "at most one alert per signal and CSM"
    );
    let second_score = h.seen.health.last().unwrap().score;
    assert!(second_score < first_score, "{second_score} < {first_score}");

    // The subscription turns past_due: a second dunning signal (the subscription's side of
    // the same collection) that health counts once, at the stronger of the two.
    let past_due = |at: i64, before: &str, after: &str| v1::SubscriptionChanged {
        context: context(at, "event"),
        stripe_customer_id: CUSTOMER.into(),
        stripe_subscription_id: "sub_risk1".into(),
        movement: "unchanged".into(),
        status_before: before.into(),
        status_after: after.into(),
        plan_before: "Pro".into(),
        plan_after: "Pro".into(),
        quantity_before: 10,
        quantity_after: 10,
        mrr_before: 49_000,
        mrr_after: 49_000,
        currency: "usd".into(),
        ..Default::default()
    };
    h.send(&past_due(t0 + 150, "active", "past_due")).await;
    h.wait("subscription dunning", |s| {
        s.raised
            .iter()
            .any(|r| r.cause_key == "subscription:sub_risk1" && r.kind == "dunning_in_progress")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    h.drain().await;
    let health = h.seen.health.last().unwrap();
    let dunning = health
        .components
        .iter()
        .filter(|c| c.kind == "dunning_in_progress" && c.open)
        .count();
    assert_eq!(
        dunning, 1,
        "one collection, one deduction: {:?}",
        health.components
    );
    let raised_before = h.seen.raised.len();

    // 4. Paid: both invoice signals resolve, health recovers.
    h.send(&invoice(t0 + 200, "paid", 2, 0, 0)).await;
    h.wait("resolution", |s| {
        s.resolved
            .iter()
            .filter(|r| r.cause_key == "invoice:in_risk1")
            .count()
            == 2
    })
    .await;
    assert!(
        h.seen.resolved.iter().all(|r| r.reason == "paid"),
        "{:?}",
        h.seen.resolved
    );
    h.wait("health recovers", |s| {
        s.health.last().is_some_and(|hc| hc.score > second_score)
    })
    .await;
    assert_eq!(h.seen.raised.len(), raised_before, "no raise on payment");
    h.send(&past_due(t0 + 210, "past_due", "active")).await;
    h.wait("subscription recovered", |s| {
        s.resolved
            .iter()
            .any(|r| r.cause_key == "subscription:sub_risk1" && r.reason == "recovered")
    })
    .await;
    assert!(h.open_signals().await.is_empty());

    // 5. A downgrade: the signal carries the MRR delta.
    h.send(&v1::SubscriptionChanged {
        context: context(t0 + 300, "event"),
        stripe_customer_id: CUSTOMER.into(),
        stripe_subscription_id: "sub_risk1".into(),
        movement: "contraction".into(),
        status_before: "active".into(),
        status_after: "active".into(),
        plan_before: "Pro".into(),
        plan_after: "Basic".into(),
        quantity_before: 10,
        quantity_after: 4,
        mrr_before: 49_000,
        mrr_after: 19_600,
        currency: "usd".into(),
        ..Default::default()
    })
    .await;
    h.wait("downgrade", |s| {
        s.raised.iter().any(|r| r.kind == "subscription_downgrade")
    })
    .await;
    let downgrade = h
        .seen
        .raised
        .iter()
        .find(|r| r.kind == "subscription_downgrade")
        .unwrap();
    assert!(
        downgrade.evidence_json.contains("29400") || downgrade.evidence_json.contains("-29400"),
        "{}",
        downgrade.evidence_json
    );
    assert_eq!(
        downgrade.severity, "critical",
        "a 60 % drop is past the 50 % line"
    );

    // 6. A default card that expires next month: nothing today if it is far, the scan on a
    //    chosen day finds it within 30 days.
    let expiry = Utc::now() + chrono::TimeDelta::days(120);
    use chrono::Datelike as _;
    h.send(&v1::PaymentMethodUpdated {
        context: context(t0 + 400, "event"),
        stripe_customer_id: CUSTOMER.into(),
        payment_method_id: "pm_risk1".into(),
        brand: "visa".into(),
        last4: "4242".into(),
        exp_month: expiry.month() as i32,
        exp_year: expiry.year(),
        detached: false,
    })
    .await;
    h.send(&v1::CustomerUpserted {
        context: context(t0 + 401, "event"),
        stripe_customer_id: CUSTOMER.into(),
        email: "ap@acme.com".into(),
        default_payment_method: "pm_risk1".into(),
        ..Default::default()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !h.open_signals().await.contains_key("card_expiring"),
        "120 days out"
    );
    let engine = risk_engine::engine::Engine {
        config: Default::default(),
        weights: Default::default(),
    };
    let scan_day = Utc
        .with_ymd_and_hms(expiry.year(), expiry.month(), 10, 12, 0, 0)
        .unwrap();
    let report = risk_engine::scan::scan(&h.pool, &engine, scan_day)
        .await
        .unwrap();
    assert!(report.customers >= 1, "{report:?}");
    assert!(
        h.open_signals().await.contains_key("card_expiring"),
        "{:?}",
        h.open_signals().await
    );
    // A second scan the same day changes nothing.
    let again = risk_engine::scan::scan(&h.pool, &engine, scan_day)
        .await
        .unwrap();
    let raised_cards = |s: &Seen| {
        s.raised
            .iter()
            .filter(|r| r.kind == "card_expiring")
            .count()
    };
    h.wait("card expiring published", |s| raised_cards(s) == 1)
        .await;
    assert_eq!(again.events, 0, "{again:?}");

    // 7. Bad input is dead-lettered with the reason and changes nothing.
    let open_before = h.open_signals().await;
    h.send_as(&invoice(t0 + 500, "open", 3, 49_000, 0), "no-tenant", "")
        .await;
    let mut bad_currency = invoice(t0 + 501, "open", 3, 49_000, 0);
    bad_currency.currency = "dollars".into();
    h.send_as(&bad_currency, "bad-currency", TENANT).await;
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
    assert_eq!(h.open_signals().await, open_before);

    let status = h.engine.take().unwrap().terminate();
    assert!(status.success(), "{status}");
    h.env.cleanup(&[&*h.broker]).await;
}
