//! Payment attempts find their invoice through the invoice's payments (basil: a charge no
//! longer names its invoice), whichever is written first, by either kind of link: the
//! attempt's PaymentIntent, or the charge itself (an invoice paid out of band by a charge).

use std::collections::BTreeMap;

use chrono::Utc;
use diesel::{ExpressionMethods as _, QueryDsl as _};
use diesel_async::RunQueryDsl as _;
use platform::testing::TestEnv;
use sync_worker::{
    rows::{AttemptRow, InvoicePaymentRow, InvoiceRow, InvoiceRows},
    schema, store,
};

const TENANT: &str = "tenant-links";

fn invoice(
    account: &str,
    id: &str,
    payments: Vec<(&str, Option<&str>, Option<&str>)>,
) -> InvoiceRows {
    InvoiceRows {
        invoice: InvoiceRow {
            tenant_id: TENANT.into(),
            account_id: account.into(),
            stripe_customer_id: "cus_1".into(),
            stripe_invoice_id: id.into(),
            stripe_subscription_id: None,
            number: None,
            amount_cents: 5_000,
            amount_paid: 0,
            amount_remaining: 5_000,
            total: 5_000,
            currency: "usd".into(),
            status: Some("open".into()),
            billing_reason: None,
            collection_method: None,
            due_date: None,
            paid_at: None,
            attempt_count: 1,
            next_payment_attempt: None,
            period_start: None,
            period_end: None,
            hosted_invoice_url: None,
            created_at: Some(Utc::now()),
            source_created: 100,
        },
        lines: Vec::new(),
        payments: Some(
            payments
                .into_iter()
                .map(|(payment_id, intent, charge)| InvoicePaymentRow {
                    tenant_id: TENANT.into(),
                    account_id: account.into(),
                    invoice_payment_id: payment_id.into(),
                    stripe_invoice_id: id.into(),
                    payment_intent_id: intent.map(Into::into),
                    charge_id: charge.map(Into::into),
                    status: "open".into(),
                    source_created: 100,
                })
                .collect(),
        ),
    }
}

fn attempt(account: &str, charge: &str, intent: Option<&str>) -> AttemptRow {
    AttemptRow {
        tenant_id: TENANT.into(),
        account_id: account.into(),
        charge_id: charge.into(),
        stripe_customer_id: Some("cus_1".into()),
        payment_intent_id: intent.map(Into::into),
        stripe_invoice_id: None,
        attempted_at: Utc::now(),
        amount: 5_000,
        currency: "usd".into(),
        outcome: "failed".into(),
        failure_code: Some("card_declined".into()),
        failure_message: None,
        attempt_number: None,
        source_created: 100,
    }
}

/// The book of one account: in_1 collected by PaymentIntent pi_1 (two tries), in_2 paid by a
/// charge directly, and a charge of no invoice.
fn book(account: &str) -> (Vec<InvoiceRows>, Vec<AttemptRow>) {
    (
        vec![
            invoice(account, "in_1", vec![("inpay_1", Some("pi_1"), None)]),
            invoice(account, "in_2", vec![("inpay_2", None, Some("ch_oob"))]),
        ],
        vec![
            attempt(account, "ch_1a", Some("pi_1")),
            attempt(account, "ch_1b", Some("pi_1")),
            attempt(account, "ch_oob", None),
            attempt(account, "ch_lone", Some("pi_9")),
        ],
    )
}

async fn links(
    conn: &mut diesel_async::AsyncPgConnection,
    account: &str,
) -> BTreeMap<String, Option<String>> {
    use schema::payment_attempts as a;
    a::table
        .filter(a::tenant_id.eq(TENANT))
        .filter(a::account_id.eq(account))
        .select((a::charge_id, a::stripe_invoice_id))
        .load::<(String, Option<String>)>(conn)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_find_their_invoice_by_intent_or_by_charge_in_either_order() {
    let env = TestEnv::new();
    platform::service::migrate(&sync_worker::spec(), &env.common)
        .await
        .unwrap();
    let pool = platform::db::pool(&env.common.database).unwrap();
    let mut conn = pool.get().await.unwrap();
    let want = |in_1: &str, in_2: &str| -> BTreeMap<String, Option<String>> {
        [
            ("ch_1a", Some(in_1)),
            ("ch_1b", Some(in_1)),
            ("ch_oob", Some(in_2)),
            ("ch_lone", None),
        ]
        .into_iter()
        .map(|(c, i)| (c.to_owned(), i.map(str::to_owned)))
        .collect()
    };

    // Invoices (with their payments) first, then the charges.
    let (invoices, attempts) = book("acct_payments_first");
    store::invoices(&mut conn, &invoices).await.unwrap();
    store::attempts(&mut conn, &attempts).await.unwrap();
    assert_eq!(
        links(&mut conn, "acct_payments_first").await,
        want("in_1", "in_2")
    );

    // Charges first, then the invoices.
    let (invoices, attempts) = book("acct_charges_first");
    store::attempts(&mut conn, &attempts).await.unwrap();
    assert!(links(&mut conn, "acct_charges_first")
        .await
        .values()
        .all(Option::is_none));
    store::invoices(&mut conn, &invoices).await.unwrap();
    assert_eq!(
        links(&mut conn, "acct_charges_first").await,
        want("in_1", "in_2")
    );

    // Another account's payments never link: same ids, other account, nothing crosses.
    let (_, attempts) = book("acct_no_invoices");
    store::attempts(&mut conn, &attempts).await.unwrap();
    assert!(links(&mut conn, "acct_no_invoices")
        .await
        .values()
        .all(Option::is_none));

    drop(conn);
    env.cleanup(&[]).await;
}
