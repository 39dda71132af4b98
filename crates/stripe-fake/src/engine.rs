//! Billing behaviour shared by the API, the admin triggers and the clock: invoices,
//! payment attempts, retries, subscription state changes, and the events they emit.

use crate::error::{decline_message, ApiError};
use crate::model::*;
use crate::render::previous_attributes;
use crate::rng::IdGen;
use crate::store::Book;
use chrono::{DateTime, Months};
use serde::Serialize;
use serde_json::Value;

pub const DAY: i64 = 86_400;
/// Days between automatic retries after the 1st, 2nd and 3rd failure; after the 4th
/// failed attempt the subscription becomes `unpaid` (Stripe's default smart-retry window).
pub const RETRY_GAPS_DAYS: [i64; 3] = [3, 5, 7];
/// Incomplete subscriptions expire this long after creation.
pub const INCOMPLETE_WINDOW: i64 = 23 * 3600;

/// Context of one mutation: the clock, the id source, and the events it produced.
pub struct Ctx<'a> {
    pub now: i64,
    pub ids: &'a mut IdGen,
    /// `Some(acct_…)` when mutating a connected account (copied into `event.account`).
    pub account: Option<String>,
    pub request_id: Option<String>,
    pub idempotency_key: Option<String>,
    pub events: Vec<Event>,
}

impl<'a> Ctx<'a> {
    pub fn new(now: i64, ids: &'a mut IdGen, account: Option<String>) -> Self {
        Ctx {
            now,
            ids,
            account,
            request_id: None,
            idempotency_key: None,
            events: Vec::new(),
        }
    }

    pub fn emit<T: Serialize>(&mut self, kind: &str, obj: &T, prev: Option<Value>) {
        let object = snap(obj);
        self.emit_value(kind, object, prev);
    }

    pub fn emit_value(&mut self, kind: &str, object: Value, prev: Option<Value>) {
        let id = self.ids.next("evt");
        self.events.push(Event {
            id,
            object: Lit("event"),
            account: self.account.clone(),
            api_version: API_VERSION,
            created: self.now,
            data: EventData {
                object,
                previous_attributes: prev,
            },
            livemode: false,
            pending_webhooks: 0,
            request: EventRequest {
                id: self.request_id.clone(),
                idempotency_key: self.idempotency_key.clone(),
            },
            kind: kind.to_string(),
        });
    }
}

pub fn snap<T: Serialize>(obj: &T) -> Value {
    serde_json::to_value(obj).unwrap_or(Value::Null)
}

/// `t` plus `count` intervals; months are calendar months (day clamped, like Stripe).
pub fn add_interval(t: i64, interval: Interval, count: i64) -> i64 {
    let count = count.clamp(1, 1000);
    match interval {
        Interval::Day => t + count * DAY,
        Interval::Week => t + count * 7 * DAY,
        Interval::Month | Interval::Year => {
            let months = if interval == Interval::Year {
                count * 12
            } else {
                count
            };
            DateTime::from_timestamp(t, 0)
                .and_then(|d| d.checked_add_months(Months::new(months as u32)))
                .map(|d| d.timestamp())
                .unwrap_or(t + months * 30 * DAY)
        }
    }
}

/// `t` minus `count` intervals.
pub fn sub_interval(t: i64, interval: Interval, count: i64) -> i64 {
    let count = count.clamp(1, 1000);
    match interval {
        Interval::Day => t - count * DAY,
        Interval::Week => t - count * 7 * DAY,
        Interval::Month | Interval::Year => {
            let months = if interval == Interval::Year {
                count * 12
            } else {
                count
            };
            DateTime::from_timestamp(t, 0)
                .and_then(|d| d.checked_sub_months(Months::new(months as u32)))
                .map(|d| d.timestamp())
                .unwrap_or(t - months * 30 * DAY)
        }
    }
}

/// What one item costs per billing period (metered items bill 0 in advance).
pub fn item_amount(price: &Price, quantity: i64) -> i64 {
    if price.is_metered() {
        return 0;
    }
    let q = quantity.max(0);
    match (&price.tiers, price.tiers_mode) {
        (Some(tiers), Some("volume")) => {
            let tier = tiers
                .iter()
                .find(|t| t.up_to.is_none_or(|u| q <= u))
                .or(tiers.last());
            tier.map(|t| t.unit_amount.unwrap_or(0) * q + t.flat_amount.unwrap_or(0))
                .unwrap_or(0)
        }
        (Some(tiers), Some("graduated")) => {
            let mut total = 0;
            let mut lower = 0;
            for t in tiers {
                if q <= lower {
                    break;
                }
                let upper = t.up_to.unwrap_or(i64::MAX).min(q);
                total += (upper - lower) * t.unit_amount.unwrap_or(0) + t.flat_amount.unwrap_or(0);
                lower = upper;
            }
            total
        }
        _ => price.unit_amount.unwrap_or(0) * q,
    }
}

/// Whether a discount still applies to an invoice created at `at` (`first` = the
/// subscription's first invoice, for `once` coupons).
pub fn discount_applies(d: &Discount, at: i64, first: bool) -> bool {
    match d.coupon.duration {
        "forever" => true,
        "once" => first,
        _ => d.end.is_none_or(|e| at < e),
    }
}

pub fn discount_amount(c: &Coupon, subtotal: i64) -> i64 {
    let off = match (c.percent_off, c.amount_off) {
        (Some(bp), _) => (subtotal as i128 * bp as i128 / 10_000) as i64,
        (None, Some(a)) => a,
        _ => 0,
    };
    off.clamp(0, subtotal.max(0))
}

/// Card details for Stripe's test tokens, test card numbers and `pm_card_*` ids.
/// Returns the card and the decline code its charges fail with.
pub fn test_card(token: &str) -> Option<(Card, Option<String>)> {
    let t = token
        .trim_start_matches("tok_")
        .trim_start_matches("pm_card_")
        .replace(' ', "");
    let (brand, last4, decline): (&str, &str, Option<&str>) = match t.as_str() {
        "visa" | "4242424242424242" => ("visa", "4242", None),
        "visa_debit" | "4000056655665556" => ("visa", "5556", None),
        "mastercard" | "5555555555554444" => ("mastercard", "4444", None),
        "amex" | "378282246310005" => ("amex", "0005", None),
        "discover" | "6011111111111117" => ("discover", "1117", None),
        "chargeDeclined" | "4000000000000002" => ("visa", "0002", Some("generic_decline")),
        "chargeDeclinedInsufficientFunds" | "4000000000009995" => {
            ("visa", "9995", Some("insufficient_funds"))
        }
        "chargeDeclinedExpiredCard" | "4000000000000069" => ("visa", "0069", Some("expired_card")),
        "chargeCustomerFail" | "4000000000000341" => ("visa", "0341", Some("generic_decline")),
        _ => return None,
    };
    let funding = if t == "visa_debit" || t == "4000056655665556" {
        "debit"
    } else {
        "credit"
    };
    Some((
        Card {
            brand: brand.into(),
            country: Some("US".into()),
            exp_month: 12,
            exp_year: 2034,
            funding: funding.into(),
            last4: last4.into(),
        },
        decline.map(str::to_string),
    ))
}

/// Whether a card has expired at `now` (valid through the end of its expiry month).
pub fn card_expired(card: &Card, now: i64) -> bool {
    let month = card.exp_month.clamp(1, 12) as u32;
    let year = card.exp_year.clamp(1970, 9999) as i32;
    chrono::NaiveDate::from_ymd_opt(year, month, 1)
        .and_then(|d| d.checked_add_months(Months::new(1)))
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .is_some_and(|d| now >= d.and_utc().timestamp())
}

fn not_found(object: &str, id: &str) -> ApiError {
    ApiError::missing(object, id, "id")
}

/// Creates, finalises and returns an invoice for one billing period of a subscription.
pub fn create_invoice(
    book: &mut Book,
    ctx: &mut Ctx,
    sub_id: &str,
    period_start: i64,
    period_end: i64,
    billing_reason: &'static str,
) -> Result<String, ApiError> {
    let sub = book
        .subscriptions
        .get(sub_id)
        .ok_or_else(|| not_found("subscription", sub_id))?
        .clone();
    let first = sub.latest_invoice.is_none();
    let inv_id = ctx.ids.next("in");
    let mut lines = Vec::new();
    let mut subtotal = 0;
    let trial = billing_reason == "subscription_create" && sub.status == "trialing";
    for item in &sub.items.data {
        let qty = item.quantity.unwrap_or(1);
        let amount = if trial {
            0
        } else {
            item_amount(&item.price, qty)
        };
        subtotal += amount;
        let product_name = book
            .products
            .get(&item.price.product)
            .map(|p| p.name.clone())
            .unwrap_or_else(|| "Subscription".into());
        lines.push(subscription_line(SubscriptionLine {
            id: ctx.ids.next("il"),
            invoice: inv_id.clone(),
            subscription: sub.id.clone(),
            currency: sub.currency.clone(),
            item,
            amount,
            description: if trial {
                format!("Trial period for {product_name}")
            } else {
                format!("{qty} × {product_name}")
            },
            quantity: Some(qty),
            period: (period_start, period_end),
        }));
    }
    let mut discount_amounts = vec![];
    let mut discounts = vec![];
    if let Some(d) = &sub.discount {
        if discount_applies(d, ctx.now, first) {
            let off = discount_amount(&d.coupon, subtotal);
            discount_amounts.push(DiscountAmount {
                amount: off,
                discount: d.id.clone(),
            });
            discounts.push(d.id.clone());
        }
    }
    let total = subtotal - discount_amounts.iter().map(|d| d.amount).sum::<i64>();
    let customer = book
        .customers
        .get_mut(&sub.customer)
        .ok_or_else(|| not_found("customer", &sub.customer))?;
    let number = format!(
        "{}-{:04}",
        customer.invoice_prefix, customer.next_invoice_sequence
    );
    customer.next_invoice_sequence += 1;
    let (email, name) = (customer.email.clone(), customer.name.clone());
    let account_name = book.account.business_profile.name.clone();
    let inv = new_invoice(NewInvoice {
        id: inv_id.clone(),
        customer: sub.customer.clone(),
        customer_email: email,
        customer_name: name,
        account_name,
        currency: sub.currency.clone(),
        created: ctx.now,
        period_start,
        period_end,
        billing_reason,
        subscription: Some(sub.id.clone()),
        lines,
        subtotal,
        total,
        discount_amounts,
        discounts,
        number,
    });
    ctx.emit("invoice.created", &inv, None);
    ctx.emit("invoice.finalized", &inv, None);
    book.invoices.insert(inv);
    if let Some(s) = book.subscriptions.get_mut(sub_id) {
        s.latest_invoice = Some(inv_id.clone());
    }
    Ok(inv_id)
}

/// Fields needed to build an invoice (everything else takes Stripe's defaults).
pub struct NewInvoice {
    pub id: String,
    pub customer: String,
    pub customer_email: Option<String>,
    pub customer_name: Option<String>,
    pub account_name: Option<String>,
    pub currency: String,
    pub created: i64,
    pub period_start: i64,
    pub period_end: i64,
    pub billing_reason: &'static str,
    pub subscription: Option<String>,
    pub lines: Vec<InvoiceLine>,
    pub subtotal: i64,
    pub total: i64,
    pub discount_amounts: Vec<DiscountAmount>,
    pub discounts: Vec<String>,
    pub number: String,
}

/// A finalised, open invoice (or paid when its total is 0).
pub fn new_invoice(n: NewInvoice) -> Invoice {
    let zero = n.total == 0;
    let url_id = n.id.trim_start_matches("in_").to_string();
    let line_count = n.lines.len() as i64;
    Invoice {
        object: Lit("invoice"),
        account_country: "US",
        account_name: n.account_name,
        account_tax_ids: Null,
        amount_due: n.total,
        amount_overpaid: 0,
        amount_paid: 0,
        amount_remaining: n.total,
        amount_shipping: 0,
        application: Null,
        attempt_count: 0,
        attempted: zero,
        auto_advance: !zero,
        automatic_tax: AutomaticTax {
            disabled_reason: Null,
            enabled: false,
            liability: Null,
        },
        automatically_finalizes_at: None,
        billing_reason: n.billing_reason,
        collection_method: "charge_automatically",
        confirmation_secret: Null,
        created: n.created,
        currency: n.currency,
        custom_fields: Null,
        customer: n.customer,
        customer_address: Null,
        customer_email: n.customer_email,
        customer_name: n.customer_name,
        customer_phone: Null,
        customer_shipping: Null,
        customer_tax_exempt: "none",
        customer_tax_ids: EmptyList,
        default_payment_method: Null,
        default_source: Null,
        default_tax_rates: EmptyList,
        description: None,
        discounts: n.discounts,
        due_date: None,
        effective_at: Some(n.created),
        ending_balance: Some(0),
        footer: Null,
        from_invoice: Null,
        hosted_invoice_url: Some(format!("https://invoice.stripe.com/i/fake/{url_id}")),
        invoice_pdf: Some(format!("https://pay.stripe.com/invoice/fake/{url_id}/pdf")),
        issuer: Issuer { kind: "self" },
        last_finalization_error: Null,
        latest_revision: Null,
        lines: ListOf {
            object: Lit("list"),
            data: n.lines,
            has_more: false,
            total_count: line_count,
            url: format!("/v1/invoices/{}/lines", n.id),
        },
        livemode: false,
        metadata: Metadata::new(),
        next_payment_attempt: if zero { None } else { Some(n.created) },
        number: Some(n.number),
        on_behalf_of: Null,
        parent: InvoiceParent {
            quote_details: Null,
            subscription_details: n.subscription.as_ref().map(|s| SubscriptionDetails {
                metadata: Metadata::new(),
                subscription: s.clone(),
            }),
            kind: Lit("subscription_details"),
        },
        payment_settings: InvoicePaymentSettings {
            default_mandate: Null,
            payment_method_options: Null,
            payment_method_types: Null,
        },
        period_end: n.period_end,
        period_start: n.period_start,
        post_payment_credit_notes_amount: 0,
        pre_payment_credit_notes_amount: 0,
        receipt_number: Null,
        rendering: Null,
        shipping_cost: Null,
        shipping_details: Null,
        starting_balance: 0,
        statement_descriptor: Null,
        status: if zero { "paid" } else { "open" },
        status_transitions: StatusTransitions {
            finalized_at: Some(n.created),
            paid_at: if zero { Some(n.created) } else { None },
            ..Default::default()
        },
        subtotal: n.subtotal,
        subtotal_excluding_tax: Some(n.subtotal),
        test_clock: Null,
        total: n.total,
        total_discount_amounts: n.discount_amounts,
        total_excluding_tax: Some(n.total),
        total_pretax_credit_amounts: EmptyList,
        total_taxes: EmptyList,
        webhooks_delivered_at: Some(n.created),
        subscription: n.subscription,
        charge: None,
        payment_intent: None,
        id: n.id,
    }
}

/// How a payment attempt should go.
#[derive(Debug, Clone, PartialEq)]
pub enum PayMode {
    /// As the card dictates (test-card decline, expiry).
    Normal,
    /// Fail with this decline code.
    Fail(String),
    /// Succeed whatever the card says.
    Succeed,
}

/// The payment method an invoice would be charged to.
pub fn payment_method_for(book: &Book, inv: &Invoice) -> Option<String> {
    let from_sub = inv
        .subscription
        .as_ref()
        .and_then(|s| book.subscriptions.get(s))
        .and_then(|s| s.default_payment_method.clone());
    from_sub
        .or_else(|| {
            book.customers
                .get(&inv.customer)
                .and_then(|c| c.invoice_settings.default_payment_method.clone())
        })
        .or_else(|| {
            book.payment_methods
                .ids_for_customer(&inv.customer)
                .last()
                .cloned()
        })
}

/// Builds a charge (and its outcome) for one attempt.
#[allow(clippy::too_many_arguments)]
pub fn new_charge(
    id: String,
    created: i64,
    amount: i64,
    currency: &str,
    customer: &str,
    pm: Option<&PaymentMethod>,
    pi: Option<String>,
    invoice: Option<String>,
    decline: Option<&str>,
) -> Charge {
    let ok = decline.is_none();
    Charge {
        id,
        object: Lit("charge"),
        amount,
        amount_captured: if ok { amount } else { 0 },
        amount_refunded: 0,
        application: Null,
        application_fee: Null,
        application_fee_amount: Null,
        balance_transaction: if ok {
            Some(format!(
                "txn_{}",
                &pi.clone().unwrap_or_default().trim_start_matches("pi_")
            ))
        } else {
            None
        },
        billing_details: BillingDetails {
            address: Null,
            email: None,
            name: None,
            phone: Null,
        },
        calculated_statement_descriptor: Some("FAKE PLATFORM".into()),
        captured: ok,
        created,
        currency: currency.to_string(),
        customer: customer.to_string(),
        description: Some("Subscription update".into()),
        disputed: false,
        failure_balance_transaction: Null,
        failure_code: decline.map(|d| crate::error::card_error_code(d).to_string()),
        failure_message: decline.map(|d| decline_message(d).to_string()),
        fraud_details: EmptyObj,
        livemode: false,
        metadata: Metadata::new(),
        on_behalf_of: Null,
        outcome: Outcome {
            advice_code: Null,
            network_advice_code: Null,
            network_decline_code: Null,
            network_status: if ok {
                "approved_by_network"
            } else {
                "declined_by_network"
            },
            reason: decline.map(str::to_string),
            risk_level: "normal",
            seller_message: if ok {
                "Payment complete.".into()
            } else {
                "The bank did not return any further details with this decline.".into()
            },
            kind: if ok { "authorized" } else { "issuer_declined" },
        },
        paid: ok,
        payment_intent: pi,
        payment_method: pm.map(|p| p.id.clone()),
        payment_method_details: pm.map(|p| PaymentMethodDetails {
            card: p.card.clone(),
            kind: Lit("card"),
        }),
        receipt_email: None,
        receipt_url: if ok {
            Some(format!("https://pay.stripe.com/receipts/fake/{customer}"))
        } else {
            None
        },
        refunded: false,
        review: Null,
        shipping: Null,
        statement_descriptor: Null,
        statement_descriptor_suffix: Null,
        status: if ok { "succeeded" } else { "failed" },
        transfer_data: Null,
        transfer_group: Null,
        invoice,
    }
}

#[allow(clippy::too_many_arguments)]
pub fn new_payment_intent(
    id: String,
    created: i64,
    amount: i64,
    currency: &str,
    customer: &str,
    pm: Option<String>,
    invoice: Option<String>,
    secret: String,
) -> PaymentIntent {
    PaymentIntent {
        client_secret: format!("{id}_secret_{secret}"),
        id,
        object: Lit("payment_intent"),
        amount,
        amount_capturable: 0,
        amount_received: 0,
        application: Null,
        application_fee_amount: Null,
        automatic_payment_methods: Null,
        canceled_at: Null,
        cancellation_reason: Null,
        capture_method: "automatic",
        confirmation_method: "automatic",
        created,
        currency: currency.to_string(),
        customer: customer.to_string(),
        description: Some("Subscription update".into()),
        last_payment_error: None,
        latest_charge: None,
        livemode: false,
        metadata: Metadata::new(),
        next_action: Null,
        on_behalf_of: Null,
        payment_method: pm,
        payment_method_types: vec!["card"],
        receipt_email: Null,
        setup_future_usage: Null,
        shipping: Null,
        statement_descriptor: Null,
        status: "requires_payment_method",
        transfer_data: Null,
        transfer_group: Null,
        invoice,
    }
}

/// Attempts to collect an open invoice. Returns `Err(card_error 402)` when the charge
/// fails (the failure is recorded and its events emitted all the same).
pub fn attempt_payment(
    book: &mut Book,
    ctx: &mut Ctx,
    inv_id: &str,
    mode: PayMode,
) -> Result<(), ApiError> {
    let inv = book
        .invoices
        .get(inv_id)
        .ok_or_else(|| not_found("invoice", inv_id))?
        .clone();
    if inv.status != "open" {
        return Err(ApiError::new(
            400,
            "invalid_request_error",
            Some("invoice_not_open"),
            format!("Invoice is already {}.", inv.status),
        ));
    }
    let before = snap(&inv);
    let pm_id = payment_method_for(book, &inv);
    let pm = pm_id
        .as_ref()
        .and_then(|p| book.payment_methods.get(p))
        .cloned();
    let decline: Option<String> = match &mode {
        PayMode::Succeed => None,
        PayMode::Fail(code) => Some(code.clone()),
        PayMode::Normal => match &pm {
            None => Some("generic_decline".into()),
            Some(p) if card_expired(&p.card, ctx.now) => Some("expired_card".into()),
            Some(p) => p.decline.clone(),
        },
    };
    let amount = inv.amount_remaining;
    // One PaymentIntent per invoice, one Charge per attempt.
    let pi_id = match &inv.payment_intent {
        Some(p) if book.payment_intents.contains(p) => p.clone(),
        _ => {
            let id = ctx.ids.next("pi");
            let secret = ctx.ids.token("", 24);
            let pi = new_payment_intent(
                id.clone(),
                ctx.now,
                amount,
                &inv.currency,
                &inv.customer,
                pm_id.clone(),
                Some(inv.id.clone()),
                secret,
            );
            ctx.emit("payment_intent.created", &pi, None);
            book.payment_intents.insert(pi);
            id
        }
    };
    let ch_id = ctx.ids.next("ch");
    let charge = new_charge(
        ch_id.clone(),
        ctx.now,
        amount,
        &inv.currency,
        &inv.customer,
        pm.as_ref(),
        Some(pi_id.clone()),
        Some(inv.id.clone()),
        decline.as_deref(),
    );
    let mut pi_prev = None;
    let mut pi_snapshot = Value::Null;
    if let Some(pi) = book.payment_intents.get_mut(&pi_id) {
        let old = snap(&*pi);
        pi.latest_charge = Some(ch_id.clone());
        pi.payment_method = pm_id.clone();
        match &decline {
            None => {
                pi.status = "succeeded";
                pi.amount_received = amount;
                pi.last_payment_error = None;
            }
            Some(code) => {
                pi.status = "requires_payment_method";
                pi.last_payment_error = Some(LastPaymentError {
                    charge: ch_id.clone(),
                    code: crate::error::card_error_code(code).into(),
                    decline_code: Some(code.clone()),
                    doc_url: "https://stripe.com/docs/error-codes/card-declined".into(),
                    message: decline_message(code).into(),
                    payment_method: pm.clone(),
                    kind: Lit("card_error"),
                });
            }
        }
        pi_snapshot = snap(&*pi);
        pi_prev = previous_attributes(&old, &pi_snapshot);
    }
    let inv_mut = book
        .invoices
        .get_mut(inv_id)
        .ok_or_else(|| not_found("invoice", inv_id))?;
    inv_mut.attempt_count += 1;
    inv_mut.attempted = true;
    inv_mut.charge = Some(ch_id.clone());
    inv_mut.payment_intent = Some(pi_id.clone());
    let attempts = inv_mut.attempt_count;
    match &decline {
        None => {
            inv_mut.status = "paid";
            inv_mut.amount_paid += amount;
            inv_mut.amount_remaining = 0;
            inv_mut.next_payment_attempt = None;
            inv_mut.auto_advance = false;
            inv_mut.status_transitions.paid_at = Some(ctx.now);
            let after = snap(&*inv_mut);
            let prev = previous_attributes(&before, &after);
            ctx.emit("charge.succeeded", &charge, None);
            ctx.emit_value("payment_intent.succeeded", pi_snapshot, pi_prev);
            ctx.emit_value("invoice.paid", after.clone(), prev.clone());
            ctx.emit_value("invoice.payment_succeeded", after, prev);
            book.charges.insert(charge);
            on_invoice_paid(book, ctx, inv_id);
            Ok(())
        }
        Some(code) => {
            let gap = RETRY_GAPS_DAYS.get((attempts - 1).max(0) as usize).copied();
            let first_invoice = inv_mut.billing_reason == "subscription_create";
            // The first invoice of a subscription is not retried automatically.
            inv_mut.next_payment_attempt = match (gap, first_invoice) {
                (Some(days), false) => Some(ctx.now + days * DAY),
                _ => None,
            };
            let exhausted = gap.is_none() && !first_invoice;
            let after = snap(&*inv_mut);
            let prev = previous_attributes(&before, &after);
            ctx.emit("charge.failed", &charge, None);
            ctx.emit_value("payment_intent.payment_failed", pi_snapshot, pi_prev);
            ctx.emit_value("invoice.payment_failed", after, prev);
            book.charges.insert(charge);
            on_invoice_failed(book, ctx, inv_id, exhausted);
            let mut e = ApiError::card_declined(code, decline_message(code), &ch_id);
            if let Some(card) = e.card.as_mut() {
                card.payment_intent = book.payment_intents.get(&pi_id).map(snap);
            }
            Err(e)
        }
    }
}

fn set_sub_status(book: &mut Book, ctx: &mut Ctx, sub_id: &str, status: &'static str) {
    if let Some(sub) = book.subscriptions.get_mut(sub_id) {
        if sub.status == status {
            return;
        }
        let before = snap(&*sub);
        sub.status = status;
        let after = snap(&*sub);
        let prev = previous_attributes(&before, &after);
        ctx.emit_value("customer.subscription.updated", after, prev);
    }
}

fn refresh_delinquent(book: &mut Book, ctx: &mut Ctx, customer: &str) {
    let delinquent = book
        .invoices
        .ids_for_customer(customer)
        .iter()
        .filter_map(|id| book.invoices.get(id))
        .any(|i| i.status == "open" && i.attempt_count > 0);
    if let Some(c) = book.customers.get_mut(customer) {
        if c.delinquent != delinquent {
            let before = snap(&*c);
            c.delinquent = delinquent;
            let after = snap(&*c);
            let prev = previous_attributes(&before, &after);
            ctx.emit_value("customer.updated", after, prev);
        }
    }
}

fn on_invoice_paid(book: &mut Book, ctx: &mut Ctx, inv_id: &str) {
    let Some(inv) = book.invoices.get(inv_id) else {
        return;
    };
    let customer = inv.customer.clone();
    if let Some(sub_id) = inv.subscription.clone() {
        let still_open = book
            .invoices
            .ids_for_customer(&customer)
            .iter()
            .filter_map(|id| book.invoices.get(id))
            .any(|i| {
                i.subscription.as_deref() == Some(sub_id.as_str())
                    && i.status == "open"
                    && i.attempt_count > 0
            });
        let status = book.subscriptions.get(&sub_id).map(|s| s.status);
        if !still_open && matches!(status, Some("past_due" | "unpaid" | "incomplete")) {
            set_sub_status(book, ctx, &sub_id, "active");
        }
    }
    refresh_delinquent(book, ctx, &customer);
}

fn on_invoice_failed(book: &mut Book, ctx: &mut Ctx, inv_id: &str, exhausted: bool) {
    let Some(inv) = book.invoices.get(inv_id) else {
        return;
    };
    let customer = inv.customer.clone();
    if let Some(sub_id) = inv.subscription.clone() {
        let status = book.subscriptions.get(&sub_id).map(|s| s.status);
        match status {
            Some("active" | "trialing") if exhausted => {
                set_sub_status(book, ctx, &sub_id, "unpaid")
            }
            Some("past_due") if exhausted => set_sub_status(book, ctx, &sub_id, "unpaid"),
            Some("active" | "trialing") => set_sub_status(book, ctx, &sub_id, "past_due"),
            _ => {}
        }
    }
    refresh_delinquent(book, ctx, &customer);
}

/// Cancels a subscription now.
pub fn cancel_subscription(
    book: &mut Book,
    ctx: &mut Ctx,
    sub_id: &str,
    reason: &str,
) -> Result<(), ApiError> {
    let sub = book
        .subscriptions
        .get_mut(sub_id)
        .ok_or_else(|| not_found("subscription", sub_id))?;
    if sub.status == "canceled" {
        return Err(ApiError::new(
            400,
            "invalid_request_error",
            Some("resource_missing"),
            format!("No such subscription: '{sub_id}' (it is already canceled)"),
        ));
    }
    if sub.canceled_at.is_none() || !sub.cancel_at_period_end {
        sub.canceled_at = Some(ctx.now);
    }
    sub.status = "canceled";
    sub.ended_at = Some(ctx.now);
    sub.cancellation_details.reason = Some(reason.to_string());
    let snapshot = snap(&*sub);
    ctx.emit_value("customer.subscription.deleted", snapshot, None);
    Ok(())
}

/// Changes to a subscription (API update and admin triggers).
#[derive(Debug, Clone, Default)]
pub struct SubUpdate {
    /// (item id or None for the first item, new price, new quantity, delete)
    pub items: Vec<ItemChange>,
    pub cancel_at_period_end: Option<bool>,
    pub cancel_at: Option<Option<i64>>,
    pub metadata: Option<Metadata>,
    pub default_payment_method: Option<Option<String>>,
    pub pause_collection: Option<Option<PauseCollection>>,
    pub description: Option<Option<String>>,
}

#[derive(Debug, Clone, Default)]
pub struct ItemChange {
    pub id: Option<String>,
    pub price: Option<String>,
    pub quantity: Option<i64>,
    pub deleted: bool,
}

/// Applies an update and emits `customer.subscription.updated` with previous_attributes.
/// Prorations are not computed (see README).
pub fn update_subscription(
    book: &mut Book,
    ctx: &mut Ctx,
    sub_id: &str,
    up: SubUpdate,
) -> Result<(), ApiError> {
    let current = book
        .subscriptions
        .get(sub_id)
        .ok_or_else(|| not_found("subscription", sub_id))?
        .clone();
    let mut sub = current.clone();
    for (n, change) in up.items.iter().enumerate() {
        let price = match &change.price {
            Some(p) => {
                let price = book
                    .prices
                    .get(p)
                    .ok_or_else(|| ApiError::missing("price", p, &format!("items[{n}][price]")))?
                    .clone();
                if price.currency != sub.currency {
                    return Err(ApiError::invalid(
                        "parameter_invalid",
                        &format!("items[{n}][price]"),
                        "The price's currency must match the subscription's currency.",
                    ));
                }
                if price.recurring.is_none() {
                    return Err(ApiError::invalid(
                        "parameter_invalid",
                        &format!("items[{n}][price]"),
                        "The price specified is set to `type=one_time` but this field only accepts prices with `type=recurring`.",
                    ));
                }
                Some(price)
            }
            None => None,
        };
        if let Some(q) = change.quantity {
            if q < 0 {
                return Err(ApiError::invalid(
                    "parameter_invalid_integer",
                    &format!("items[{n}][quantity]"),
                    "This value must be greater than or equal to 0.",
                ));
            }
        }
        let idx =
            match &change.id {
                Some(id) => Some(sub.items.data.iter().position(|i| &i.id == id).ok_or_else(
                    || ApiError::missing("subscription_item", id, &format!("items[{n}][id]")),
                )?),
                None if price.is_some() && up.items.len() > 1 => None,
                None if sub.items.data.len() == 1 => Some(0),
                None => None,
            };
        match idx {
            Some(i) if change.deleted => {
                sub.items.data.remove(i);
            }
            Some(i) => {
                let item = &mut sub.items.data[i];
                if let Some(p) = price {
                    item.plan = Plan::from_price(&p);
                    item.price = p;
                }
                if let Some(q) = change.quantity {
                    item.quantity = Some(q);
                }
            }
            None => {
                let p =
                    price.ok_or_else(|| ApiError::missing_param(&format!("items[{n}][price]")))?;
                let (s, e) = sub.period();
                sub.items.data.push(SubscriptionItem {
                    id: ctx.ids.next("si"),
                    object: Lit("subscription_item"),
                    billing_thresholds: Null,
                    created: ctx.now,
                    current_period_end: e,
                    current_period_start: s,
                    discounts: vec![],
                    metadata: Metadata::new(),
                    plan: Plan::from_price(&p),
                    price: p,
                    quantity: Some(change.quantity.unwrap_or(1)),
                    subscription: sub.id.clone(),
                    tax_rates: EmptyList,
                });
            }
        }
    }
    sub.items.total_count = sub.items.data.len() as i64;
    if let Some(c) = up.cancel_at_period_end {
        sub.cancel_at_period_end = c;
        if c {
            sub.canceled_at = Some(ctx.now);
            sub.cancel_at = Some(sub.period().1);
            sub.cancellation_details.reason = Some("cancellation_requested".into());
        } else {
            sub.canceled_at = None;
            sub.cancel_at = None;
            sub.cancellation_details.reason = None;
        }
    }
    if let Some(at) = up.cancel_at {
        sub.cancel_at = at;
        sub.canceled_at = at.map(|_| ctx.now);
    }
    if let Some(m) = up.metadata {
        for (k, v) in m {
            if v.is_empty() {
                sub.metadata.remove(&k);
            } else {
                sub.metadata.insert(k, v);
            }
        }
    }
    if let Some(pm) = up.default_payment_method {
        if let Some(p) = &pm {
            if !book.payment_methods.contains(p) {
                return Err(ApiError::missing(
                    "payment_method",
                    p,
                    "default_payment_method",
                ));
            }
        }
        sub.default_payment_method = pm;
    }
    if let Some(pc) = up.pause_collection {
        sub.pause_collection = pc;
    }
    if let Some(d) = up.description {
        sub.description = d;
    }
    let before = snap(&current);
    let after = snap(&sub);
    let prev = previous_attributes(&before, &after);
    book.subscriptions.insert(sub);
    if prev.is_some() {
        ctx.emit_value("customer.subscription.updated", after, prev);
    }
    Ok(())
}

/// Renews a subscription whose period ended at `at`: rolls the period, invoices it and
/// attempts payment (or cancels, when cancellation was requested for period end).
pub fn renew(book: &mut Book, ctx: &mut Ctx, sub_id: &str, at: i64) -> Result<(), ApiError> {
    let sub = book
        .subscriptions
        .get(sub_id)
        .ok_or_else(|| not_found("subscription", sub_id))?
        .clone();
    if sub.cancel_at_period_end || sub.cancel_at.is_some_and(|c| c <= at) {
        return cancel_subscription(book, ctx, sub_id, "cancellation_requested");
    }
    let (interval, count) = sub.interval();
    let end = add_interval(at, interval, count);
    let before = snap(&sub);
    let mut s = sub.clone();
    s.set_period(at, end);
    let trial_ended = s.status == "trialing";
    if trial_ended {
        s.status = "active";
    }
    let after = snap(&s);
    let prev = previous_attributes(&before, &after);
    let bill = !matches!(sub.status, "unpaid" | "paused") && s.pause_collection.is_none();
    book.subscriptions.insert(s);
    ctx.emit_value("customer.subscription.updated", after, prev);
    if bill {
        let inv = create_invoice(book, ctx, sub_id, at, end, "subscription_cycle")?;
        // A declined renewal is recorded on the invoice and subscription, not an error here.
        let _ = attempt_payment(book, ctx, &inv, PayMode::Normal);
    }
    Ok(())
}

/// Moves the clock of one account forward to `to`, running renewals, trial ends,
/// retries and scheduled cancellations in time order per subscription.
pub fn advance(book: &mut Book, ctx: &mut Ctx, to: i64) {
    for sub_id in book.subscriptions.ids() {
        for _ in 0..10_000 {
            let Some(sub) = book.subscriptions.get(&sub_id) else {
                break;
            };
            if matches!(sub.status, "canceled" | "incomplete_expired") {
                break;
            }
            #[derive(Clone, Copy)]
            enum Step {
                Expire,
                Renew,
                Retry,
                TrialWillEnd,
                CancelAt,
            }
            let mut next: Option<(i64, Step, Option<String>)> = None;
            let mut consider = |t: i64, s: Step, inv: Option<String>| {
                if next.as_ref().is_none_or(|(n, _, _)| t < *n) {
                    next = Some((t, s, inv));
                }
            };
            if sub.status == "incomplete" {
                consider(sub.created + INCOMPLETE_WINDOW, Step::Expire, None);
            } else {
                consider(sub.period().1, Step::Renew, None);
            }
            if let Some(c) = sub.cancel_at {
                consider(c, Step::CancelAt, None);
            }
            if sub.status == "trialing" && !sub.trial_will_end_sent {
                if let Some(te) = sub.trial_end {
                    consider(te - 3 * DAY, Step::TrialWillEnd, None);
                }
            }
            for inv_id in book.invoices.ids_for_customer(&sub.customer) {
                if let Some(inv) = book.invoices.get(&inv_id) {
                    if inv.status == "open" && inv.subscription.as_deref() == Some(sub_id.as_str())
                    {
                        if let Some(t) = inv.next_payment_attempt {
                            consider(t, Step::Retry, Some(inv_id.clone()));
                        }
                    }
                }
            }
            let Some((t, step, inv)) = next else { break };
            if t > to {
                break;
            }
            ctx.now = t.max(ctx.now);
            match step {
                Step::Expire => {
                    if let Some(s) = book.subscriptions.get_mut(&sub_id) {
                        let before = snap(&*s);
                        s.status = "incomplete_expired";
                        s.ended_at = Some(ctx.now);
                        let after = snap(&*s);
                        let prev = previous_attributes(&before, &after);
                        ctx.emit_value("customer.subscription.updated", after, prev);
                    }
                    if let Some(inv_id) = book
                        .subscriptions
                        .get(&sub_id)
                        .and_then(|s| s.latest_invoice.clone())
                    {
                        let _ = void_invoice(book, ctx, &inv_id);
                    }
                }
                Step::Renew => {
                    if renew(book, ctx, &sub_id, t).is_err() {
                        break;
                    }
                }
                Step::CancelAt => {
                    let _ = cancel_subscription(book, ctx, &sub_id, "cancellation_requested");
                }
                Step::TrialWillEnd => {
                    if let Some(s) = book.subscriptions.get_mut(&sub_id) {
                        s.trial_will_end_sent = true;
                        let v = snap(&*s);
                        ctx.emit_value("customer.subscription.trial_will_end", v, None);
                    }
                }
                Step::Retry => {
                    if let Some(inv_id) = inv {
                        if attempt_payment(book, ctx, &inv_id, PayMode::Normal).is_err() {
                            // recorded; nothing else to do
                        }
                    }
                }
            }
        }
    }
    ctx.now = ctx.now.max(to);
}

/// Voids an open invoice.
pub fn void_invoice(book: &mut Book, ctx: &mut Ctx, inv_id: &str) -> Result<(), ApiError> {
    let inv = book
        .invoices
        .get_mut(inv_id)
        .ok_or_else(|| not_found("invoice", inv_id))?;
    if inv.status != "open" {
        return Err(ApiError::new(
            400,
            "invalid_request_error",
            Some("invoice_not_open"),
            format!(
                "You can only void an open invoice; this one is {}.",
                inv.status
            ),
        ));
    }
    let before = snap(&*inv);
    inv.status = "void";
    inv.next_payment_attempt = None;
    inv.auto_advance = false;
    inv.status_transitions.voided_at = Some(ctx.now);
    let after = snap(&*inv);
    let prev = previous_attributes(&before, &after);
    let customer = inv.customer.clone();
    ctx.emit_value("invoice.voided", after, prev);
    refresh_delinquent(book, ctx, &customer);
    Ok(())
}

/// Marks an open invoice uncollectible.
pub fn mark_uncollectible(book: &mut Book, ctx: &mut Ctx, inv_id: &str) -> Result<(), ApiError> {
    let inv = book
        .invoices
        .get_mut(inv_id)
        .ok_or_else(|| not_found("invoice", inv_id))?;
    if inv.status != "open" {
        return Err(ApiError::new(
            400,
            "invalid_request_error",
            Some("invoice_not_open"),
            format!(
                "You can only mark an open invoice uncollectible; this one is {}.",
                inv.status
            ),
        ));
    }
    let before = snap(&*inv);
    inv.status = "uncollectible";
    inv.next_payment_attempt = None;
    inv.status_transitions.marked_uncollectible_at = Some(ctx.now);
    let after = snap(&*inv);
    let prev = previous_attributes(&before, &after);
    ctx.emit_value("invoice.marked_uncollectible", after, prev);
    Ok(())
}

/// Fails the next payment of a subscription now: retries its open invoice, or bills the
/// next period early, with a forced decline. `sticky` keeps the card failing afterwards.
pub fn fail_next_payment(
    book: &mut Book,
    ctx: &mut Ctx,
    sub_id: &str,
    decline: &str,
    sticky: bool,
) -> Result<String, ApiError> {
    let sub = book
        .subscriptions
        .get(sub_id)
        .ok_or_else(|| not_found("subscription", sub_id))?
        .clone();
    if sticky {
        let inv_probe = book
            .invoices
            .get(sub.latest_invoice.as_deref().unwrap_or(""));
        let pm = match inv_probe {
            Some(inv) => payment_method_for(book, inv),
            None => sub.default_payment_method.clone(),
        };
        if let Some(pm) = pm.and_then(|p| book.payment_methods.get_mut(&p)) {
            pm.decline = Some(decline.to_string());
        }
    }
    let open = sub
        .latest_invoice
        .as_ref()
        .and_then(|i| book.invoices.get(i))
        .filter(|i| i.status == "open")
        .map(|i| i.id.clone());
    let inv_id = match open {
        Some(i) => i,
        None => {
            if matches!(sub.status, "canceled" | "incomplete_expired") {
                return Err(ApiError::new(
                    400,
                    "invalid_request_error",
                    None,
                    format!(
                        "Subscription {sub_id} is {}; nothing to charge.",
                        sub.status
                    ),
                ));
            }
            let (interval, count) = sub.interval();
            let start = ctx.now;
            let end = add_interval(start, interval, count);
            let before = snap(&sub);
            let mut s = sub.clone();
            s.set_period(start, end);
            if s.status == "trialing" {
                s.status = "active";
                s.trial_end = Some(start);
            }
            let after = snap(&s);
            let prev = previous_attributes(&before, &after);
            book.subscriptions.insert(s);
            ctx.emit_value("customer.subscription.updated", after, prev);
            create_invoice(book, ctx, sub_id, start, end, "subscription_cycle")?
        }
    };
    let _ = attempt_payment(book, ctx, &inv_id, PayMode::Fail(decline.to_string()));
    Ok(inv_id)
}

/// Sets a card's expiry and emits `payment_method.updated`.
pub fn set_card_expiry(
    book: &mut Book,
    ctx: &mut Ctx,
    pm_id: &str,
    month: i64,
    year: i64,
) -> Result<(), ApiError> {
    let pm = book
        .payment_methods
        .get_mut(pm_id)
        .ok_or_else(|| not_found("payment_method", pm_id))?;
    let before = snap(&*pm);
    pm.card.exp_month = month.clamp(1, 12);
    pm.card.exp_year = year;
    let after = snap(&*pm);
    let prev = previous_attributes(&before, &after);
    ctx.emit_value("payment_method.updated", after, prev);
    Ok(())
}

/// Stripe's dispute fee in minor units, withdrawn with the disputed amount (15.00 in the
/// fake's currencies; Stripe's schedule varies by country).
pub const DISPUTE_FEE: i64 = 1500;

/// Days the fake gives to respond to a dispute (`evidence_details.due_by`).
pub const DISPUTE_RESPONSE_DAYS: i64 = 7;

fn dispute_balance_transaction(
    ctx: &mut Ctx,
    dispute: &Dispute,
    amount: i64,
    fee: i64,
    reporting_category: &'static str,
    description: String,
) -> BalanceTransaction {
    BalanceTransaction {
        id: ctx.ids.next("txn"),
        object: Lit("balance_transaction"),
        amount,
        available_on: ctx.now,
        balance_type: "payments",
        created: ctx.now,
        currency: dispute.currency.clone(),
        description,
        exchange_rate: Null,
        fee,
        fee_details: if fee == 0 {
            vec![]
        } else {
            vec![FeeDetail {
                amount: fee,
                application: Null,
                currency: dispute.currency.clone(),
                description: "Dispute fee",
                kind: Lit("stripe_fee"),
            }]
        },
        net: amount - fee,
        reporting_category,
        source: dispute.id.clone(),
        status: "available",
        kind: Lit("adjustment"),
    }
}

/// Opens a dispute on a charge, as a card network does: a chargeback (`needs_response`,
/// the amount and the dispute fee withdrawn at once: `charge.dispute.created` then
/// `charge.dispute.funds_withdrawn`), or with `inquiry` an inquiry
/// (`warning_needs_response`, no money moves: `charge.dispute.created` only).
pub fn open_dispute(
    book: &mut Book,
    ctx: &mut Ctx,
    charge_id: &str,
    reason: &str,
    inquiry: bool,
) -> Result<String, ApiError> {
    let ch = book
        .charges
        .get_mut(charge_id)
        .ok_or_else(|| not_found("charge", charge_id))?;
    if ch.status != "succeeded" {
        return Err(ApiError::new(
            400,
            "invalid_request_error",
            None,
            format!("Charge {charge_id} did not succeed and cannot be disputed."),
        ));
    }
    if ch.disputed {
        return Err(ApiError::new(
            400,
            "invalid_request_error",
            None,
            format!("Charge {charge_id} is already disputed."),
        ));
    }
    let before = snap(&*ch);
    ch.disputed = true;
    let after = snap(&*ch);
    let (amount, currency, pi, customer) = (
        ch.amount,
        ch.currency.clone(),
        ch.payment_intent.clone(),
        ch.customer.clone(),
    );
    let brand = ch
        .payment_method_details
        .as_ref()
        .map_or_else(|| "visa".to_owned(), |d| d.card.brand.clone());
    let id = ctx.ids.next("dp");
    let mut dispute = Dispute {
        id: id.clone(),
        object: Lit("dispute"),
        amount,
        balance_transactions: vec![],
        charge: charge_id.to_string(),
        created: ctx.now,
        currency,
        enhanced_eligibility_types: EmptyList,
        evidence: DisputeEvidence::default(),
        evidence_details: EvidenceDetails {
            due_by: Some(ctx.now + DISPUTE_RESPONSE_DAYS * DAY),
            enhanced_eligibility: EmptyObj,
            has_evidence: false,
            past_due: false,
            submission_count: 0,
        },
        is_charge_refundable: inquiry,
        livemode: false,
        metadata: Metadata::new(),
        network_reason_code: None,
        payment_intent: pi,
        payment_method_details: Some(DisputePaymentMethodDetails {
            card: DisputeCard {
                network: brand.clone(),
                brand,
                case_type: if inquiry { "inquiry" } else { "chargeback" },
                network_reason_code: None,
            },
            kind: Lit("card"),
        }),
        reason: reason.to_string(),
        status: if inquiry {
            "warning_needs_response"
        } else {
            "needs_response"
        },
        customer,
    };
    if inquiry {
        ctx.emit("charge.dispute.created", &dispute, None);
    } else {
        let withdrawal = dispute_balance_transaction(
            ctx,
            &dispute,
            -dispute.amount,
            DISPUTE_FEE,
            "dispute",
            format!("Chargeback withdrawal for {charge_id}"),
        );
        dispute.balance_transactions.push(withdrawal);
        ctx.emit("charge.dispute.created", &dispute, None);
        ctx.emit("charge.dispute.funds_withdrawn", &dispute, None);
    }
    let prev = previous_attributes(&before, &after);
    ctx.emit_value("charge.updated", after, prev);
    book.disputes.insert(dispute);
    Ok(id)
}

fn dispute_error(message: String) -> ApiError {
    ApiError::new(400, "invalid_request_error", None, message)
}

/// Submits evidence (`POST /v1/disputes/{id}` with `submit=true`): the issuer now reviews
/// it. `needs_response` becomes `under_review`, `warning_needs_response` becomes
/// `warning_under_review`; `charge.dispute.updated`.
pub fn submit_dispute_evidence(
    book: &mut Book,
    ctx: &mut Ctx,
    dispute_id: &str,
    text: Option<&str>,
) -> Result<(), ApiError> {
    let dp = book
        .disputes
        .get_mut(dispute_id)
        .ok_or_else(|| not_found("dispute", dispute_id))?;
    let next = match dp.status {
        "needs_response" => "under_review",
        "warning_needs_response" => "warning_under_review",
        other => {
            return Err(dispute_error(format!(
                "This dispute is {other}: evidence can only be submitted while it needs a response."
            )))
        }
    };
    let before = snap(&*dp);
    dp.status = next;
    dp.evidence.uncategorized_text = Some(
        text.unwrap_or("The customer used the service during the disputed period.")
            .to_owned(),
    );
    dp.evidence_details.has_evidence = true;
    dp.evidence_details.submission_count += 1;
    let after = snap(&*dp);
    let prev = previous_attributes(&before, &after);
    ctx.emit_value("charge.dispute.updated", after, prev);
    Ok(())
}

/// The issuer's decision: `won` or `lost` (a chargeback), `warning_closed` (an inquiry
/// that never became one). A won chargeback gets its amount back
/// (`charge.dispute.funds_reinstated`, a second balance transaction); a lost one keeps the
/// withdrawal made when it opened. Then `charge.dispute.closed`.
pub fn close_dispute(
    book: &mut Book,
    ctx: &mut Ctx,
    dispute_id: &str,
    outcome: &str,
) -> Result<&'static str, ApiError> {
    let dp = book
        .disputes
        .get_mut(dispute_id)
        .ok_or_else(|| not_found("dispute", dispute_id))?;
    let inquiry = dp.status.starts_with("warning_");
    let status = match (dp.status, outcome) {
        ("won" | "lost" | "warning_closed" | "prevented" | "charge_refunded", _) => {
            return Err(dispute_error(format!(
                "This dispute is already closed ({}).",
                dp.status
            )))
        }
        (_, "won") if !inquiry => "won",
        (_, "lost") if !inquiry => "lost",
        (_, "warning_closed") if inquiry => "warning_closed",
        (current, other) => {
            let allowed = if inquiry {
                "\"warning_closed\" (an inquiry)"
            } else {
                "\"won\" or \"lost\" (a chargeback)"
            };
            return Err(dispute_error(format!(
                "Outcome {other:?} cannot close a {current} dispute: pass {allowed}."
            )));
        }
    };
    let before = snap(&*dp);
    dp.status = status;
    dp.is_charge_refundable = false;
    let reinstated = status == "won";
    if reinstated {
        let charge = dp.charge.clone();
        let amount = dp.amount;
        let reinstatement = dispute_balance_transaction(
            ctx,
            dp,
            amount,
            0,
            "dispute_reversal",
            format!("Chargeback reversal for {charge}"),
        );
        dp.balance_transactions.push(reinstatement);
    }
    let after = snap(&*dp);
    let prev = previous_attributes(&before, &after);
    if reinstated {
        ctx.emit_value("charge.dispute.funds_reinstated", after.clone(), None);
    }
    ctx.emit_value("charge.dispute.closed", after, prev);
    Ok(status)
}

/// What differs between the invoice lines of subscription items.
pub struct SubscriptionLine<'a> {
    pub id: String,
    pub invoice: String,
    pub subscription: String,
    pub currency: String,
    pub item: &'a SubscriptionItem,
    pub amount: i64,
    pub description: String,
    pub quantity: Option<i64>,
    pub period: (i64, i64),
}

/// An invoice line for one subscription item, as Stripe renders it (basil shape); shared by
/// the seed generator and live billing.
pub fn subscription_line(l: SubscriptionLine<'_>) -> InvoiceLine {
    InvoiceLine {
        id: l.id,
        object: Lit("line_item"),
        amount: l.amount,
        currency: l.currency,
        description: Some(l.description),
        discount_amounts: EmptyList,
        discountable: true,
        discounts: EmptyList,
        invoice: l.invoice,
        livemode: false,
        metadata: Metadata::new(),
        parent: LineParent {
            invoice_item_details: Null,
            subscription_item_details: Some(SubscriptionItemDetails {
                invoice_item: Null,
                proration: false,
                proration_details: ProrationDetails {
                    credited_items: Null,
                },
                subscription: l.subscription,
                subscription_item: l.item.id.clone(),
            }),
            kind: Lit("subscription_item_details"),
        },
        period: Period {
            end: l.period.1,
            start: l.period.0,
        },
        pretax_credit_amounts: EmptyList,
        pricing: LinePricing {
            price_details: PriceDetails {
                price: l.item.price.id.clone(),
                product: l.item.price.product.clone(),
            },
            kind: Lit("price_details"),
            unit_amount_decimal: l.item.price.unit_amount_decimal.clone(),
        },
        quantity: l.quantity,
        subtotal: l.amount,
        taxes: EmptyList,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(amount: i64, tiers: Option<(&'static str, Vec<Tier>)>) -> Price {
        Price {
            id: "price_x".into(),
            object: Lit("price"),
            active: true,
            billing_scheme: if tiers.is_some() {
                "tiered"
            } else {
                "per_unit"
            },
            created: 0,
            currency: "usd".into(),
            custom_unit_amount: Null,
            livemode: false,
            lookup_key: None,
            metadata: Metadata::new(),
            nickname: None,
            product: "prod_x".into(),
            recurring: Some(Recurring {
                interval: Interval::Month,
                interval_count: 1,
                meter: Null,
                trial_period_days: None,
                usage_type: "licensed",
            }),
            tax_behavior: "unspecified",
            tiers_mode: tiers.as_ref().map(|t| t.0),
            tiers: tiers.map(|t| t.1),
            transform_quantity: Null,
            kind: "recurring",
            unit_amount: if amount > 0 { Some(amount) } else { None },
            unit_amount_decimal: None,
        }
    }

    #[test]
    fn tiered_amounts() {
        let tiers = vec![Tier::new(Some(10), 1000, 0), Tier::new(None, 800, 500)];
        assert_eq!(
            item_amount(&price(0, Some(("volume", tiers.clone()))), 12),
            800 * 12 + 500
        );
        assert_eq!(
            item_amount(&price(0, Some(("volume", tiers.clone()))), 10),
            10_000
        );
        assert_eq!(
            item_amount(&price(0, Some(("graduated", tiers))), 12),
            10 * 1000 + 2 * 800 + 500
        );
        assert_eq!(item_amount(&price(1500, None), 3), 4500);
    }

    #[test]
    fn months_are_calendar_months() {
        // 2025-01-31 + 1 month = 2025-02-28
        let jan31 = 1_738_281_600;
        assert_eq!(add_interval(jan31, Interval::Month, 1), 1_740_700_800);
        assert_eq!(
            sub_interval(add_interval(0, Interval::Year, 1), Interval::Year, 1),
            0
        );
    }

    #[test]
    fn card_expiry() {
        let card = test_card("tok_visa").unwrap().0; // 12/2034
        assert!(!card_expired(&card, 2_050_000_000)); // 2034-12-16
        assert!(card_expired(&card, 2_051_222_400)); // 2035-01-01
    }
}
