//! Stripe objects (async-stripe types) → rows of the `billing` schema. Pure: no IO, so every
//! mapping rule is unit-testable and shared by backfill, live events and reconciliation.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use stripe_api::stripe_shared::{
    Charge, Coupon, Customer, Dispute, Invoice, InvoiceLineItem, PaymentMethod, Price, Product,
    Subscription,
};
use stripe_api::stripe_types::Expandable;

use crate::schema::{
    coupons, disputes, invoice_lines, invoice_payments, payment_attempts, payment_methods, prices,
    products, stripe_customers, stripe_invoices, stripe_subscriptions, subscription_items,
};

/// Which tenant and Stripe account a row belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub tenant_id: String,
    pub account_id: String,
}

pub fn ts(seconds: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(seconds, 0)
}

fn expandable_id<T: stripe_api::stripe_types::Object>(e: &Expandable<T>) -> String
where
    T::Id: stripe_api::stripe_types::AsCursorOpt,
{
    use stripe_api::stripe_types::AsCursorOpt as _;
    e.id().as_cursor_opt().unwrap_or_default().to_owned()
}

#[derive(Debug, Clone, PartialEq, Insertable, AsChangeset)]
#[diesel(table_name = stripe_customers)]
pub struct CustomerRow {
    pub tenant_id: String,
    pub account_id: String,
    pub stripe_customer_id: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub currency: Option<String>,
    pub delinquent: bool,
    pub metadata: serde_json::Value,
    pub default_payment_method: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub source_created: i64,
}

pub fn customer_row(scope: &Scope, c: &Customer, source_created: i64) -> CustomerRow {
    let default_pm = c
        .invoice_settings
        .as_ref()
        .and_then(|s| s.default_payment_method.as_ref())
        .map(expandable_id);
    CustomerRow {
        tenant_id: scope.tenant_id.clone(),
        account_id: scope.account_id.clone(),
        stripe_customer_id: c.id.as_str().to_owned(),
        email: c.email.clone(),
        name: c.name.clone(),
        currency: c.currency.as_ref().map(ToString::to_string),
        delinquent: c.delinquent.unwrap_or(false),
        metadata: serde_json::to_value(c.metadata.clone().unwrap_or_default()).unwrap_or_default(),
        default_payment_method: default_pm,
        created_at: ts(c.created),
        source_created,
    }
}

/// The customer's default card when the list was fetched with it expanded.
pub fn default_card(c: &Customer) -> Option<&PaymentMethod> {
    c.invoice_settings
        .as_ref()?
        .default_payment_method
        .as_ref()?
        .as_object()
}

#[derive(Debug, Clone, PartialEq, Insertable, AsChangeset)]
#[diesel(table_name = payment_methods)]
pub struct PaymentMethodRow {
    pub tenant_id: String,
    pub account_id: String,
    pub payment_method_id: String,
    pub stripe_customer_id: Option<String>,
    pub kind: String,
    pub card_brand: Option<String>,
    pub card_last4: Option<String>,
    pub exp_month: Option<i16>,
    pub exp_year: Option<i16>,
    pub source_created: i64,
}

/// Brand, last four and expiry only: nothing else of a card is ever copied.
pub fn payment_method_row(
    scope: &Scope,
    pm: &PaymentMethod,
    source_created: i64,
) -> PaymentMethodRow {
    let card = pm.card.as_ref();
    let last4 = card
        .map(|c| c.last4.clone())
        .filter(|l| l.len() == 4 && l.bytes().all(|b| b.is_ascii_digit()));
    PaymentMethodRow {
        tenant_id: scope.tenant_id.clone(),
        account_id: scope.account_id.clone(),
        payment_method_id: pm.id.as_str().to_owned(),
        stripe_customer_id: pm.customer.as_ref().map(expandable_id),
        kind: pm.type_.as_str().to_owned(),
        card_brand: card.map(|c| c.brand.clone()),
        card_last4: last4,
        exp_month: card.and_then(|c| i16::try_from(c.exp_month).ok()),
        exp_year: card.and_then(|c| i16::try_from(c.exp_year).ok()),
        source_created,
    }
}

#[derive(Debug, Clone, PartialEq, Insertable, AsChangeset)]
#[diesel(table_name = products)]
pub struct ProductRow {
    pub tenant_id: String,
    pub account_id: String,
    pub product_id: String,
    pub name: String,
    pub active: bool,
    pub source_created: i64,
}

pub fn product_row(scope: &Scope, p: &Product, source_created: i64) -> ProductRow {
    ProductRow {
        tenant_id: scope.tenant_id.clone(),
        account_id: scope.account_id.clone(),
        product_id: p.id.as_str().to_owned(),
        name: p.name.clone(),
        active: p.active,
        source_created,
    }
}

#[derive(Debug, Clone, PartialEq, Insertable, AsChangeset)]
#[diesel(table_name = prices)]
pub struct PriceRow {
    pub tenant_id: String,
    pub account_id: String,
    pub price_id: String,
    pub product_id: String,
    pub object: serde_json::Value,
    pub source_created: i64,
}

pub fn price_row(
    scope: &Scope,
    p: &Price,
    source_created: i64,
) -> Result<PriceRow, serde_json::Error> {
    Ok(PriceRow {
        tenant_id: scope.tenant_id.clone(),
        account_id: scope.account_id.clone(),
        price_id: p.id.as_str().to_owned(),
        product_id: expandable_id(&p.product),
        object: serde_json::to_value(p)?,
        source_created,
    })
}

#[derive(Debug, Clone, PartialEq, Insertable, AsChangeset)]
#[diesel(table_name = coupons)]
pub struct CouponRow {
    pub tenant_id: String,
    pub account_id: String,
    pub coupon_id: String,
    pub object: serde_json::Value,
    pub source_created: i64,
}

pub fn coupon_row(
    scope: &Scope,
    c: &Coupon,
    source_created: i64,
) -> Result<CouponRow, serde_json::Error> {
    Ok(CouponRow {
        tenant_id: scope.tenant_id.clone(),
        account_id: scope.account_id.clone(),
        coupon_id: c.id.as_str().to_owned(),
        object: serde_json::to_value(c)?,
        source_created,
    })
}

#[derive(Debug, Clone, PartialEq, Insertable, AsChangeset)]
#[diesel(table_name = stripe_subscriptions)]
#[diesel(treat_none_as_null = true)]
pub struct SubscriptionRow {
    pub tenant_id: String,
    pub account_id: String,
    pub stripe_customer_id: String,
    pub stripe_subscription_id: String,
    pub status: String,
    pub plan_name: Option<String>,
    pub mrr_cents: i64,
    pub currency: String,
    pub mrr_error: Option<String>,
    pub quantity: Option<i64>,
    pub current_period_start: Option<DateTime<Utc>>,
    pub current_period_end: Option<DateTime<Utc>>,
    pub cancel_at_period_end: bool,
    pub cancel_at: Option<DateTime<Utc>>,
    pub canceled_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub trial_end: Option<DateTime<Utc>>,
    pub pause_collection: bool,
    pub default_payment_method: Option<String>,
    pub latest_invoice: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub source_created: i64,
}

#[derive(Debug, Clone, PartialEq, Insertable)]
#[diesel(table_name = subscription_items)]
pub struct ItemRow {
    pub tenant_id: String,
    pub account_id: String,
    pub stripe_item_id: String,
    pub stripe_subscription_id: String,
    pub price_id: String,
    pub product_id: String,
    pub quantity: Option<i64>,
    pub unit_amount: Option<i64>,
    pub currency: String,
    pub interval: Option<String>,
    pub interval_count: Option<i32>,
    pub usage_type: Option<String>,
    pub current_period_start: Option<DateTime<Utc>>,
    pub current_period_end: Option<DateTime<Utc>>,
}

/// The subscription's row (MRR filled by the caller) and its items. `plan_name` is the
/// price nickname or product id of the first item; the store resolves product names.
pub fn subscription_rows(
    scope: &Scope,
    s: &Subscription,
    mrr: Result<i64, String>,
    source_created: i64,
) -> (SubscriptionRow, Vec<ItemRow>) {
    let items: Vec<ItemRow> = s
        .items
        .data
        .iter()
        .map(|item| ItemRow {
            tenant_id: scope.tenant_id.clone(),
            account_id: scope.account_id.clone(),
            stripe_item_id: item.id.as_str().to_owned(),
            stripe_subscription_id: s.id.as_str().to_owned(),
            price_id: item.price.id.as_str().to_owned(),
            product_id: expandable_id(&item.price.product),
            quantity: item.quantity.and_then(|q| i64::try_from(q).ok()),
            unit_amount: item.price.unit_amount,
            currency: item.price.currency.to_string(),
            interval: item
                .price
                .recurring
                .as_ref()
                .map(|r| r.interval.as_str().to_owned()),
            interval_count: item
                .price
                .recurring
                .as_ref()
                .and_then(|r| i32::try_from(r.interval_count).ok()),
            usage_type: item
                .price
                .recurring
                .as_ref()
                .map(|r| r.usage_type.as_str().to_owned()),
            current_period_start: ts(item.current_period_start),
            current_period_end: ts(item.current_period_end),
        })
        .collect();
    // Newer API versions keep periods on items only; all items share the subscription's.
    let first = s.items.data.first();
    let quantity = if items.is_empty() {
        None
    } else {
        Some(items.iter().map(|i| i.quantity.unwrap_or(0)).sum())
    };
    let (mrr_cents, mrr_error) = match mrr {
        Ok(cents) => (cents, None),
        Err(reason) => (0, Some(reason)),
    };
    let row = SubscriptionRow {
        tenant_id: scope.tenant_id.clone(),
        account_id: scope.account_id.clone(),
        stripe_customer_id: expandable_id(&s.customer),
        stripe_subscription_id: s.id.as_str().to_owned(),
        status: s.status.as_str().to_owned(),
        plan_name: first.map(|i| {
            i.price
                .nickname
                .clone()
                .unwrap_or_else(|| expandable_id(&i.price.product))
        }),
        mrr_cents,
        currency: s.currency.to_string(),
        mrr_error,
        quantity,
        current_period_start: first.and_then(|i| ts(i.current_period_start)),
        current_period_end: first.and_then(|i| ts(i.current_period_end)),
        cancel_at_period_end: s.cancel_at_period_end,
        cancel_at: s.cancel_at.and_then(ts),
        canceled_at: s.canceled_at.and_then(ts),
        ended_at: s.ended_at.and_then(ts),
        trial_end: s.trial_end.and_then(ts),
        pause_collection: s.pause_collection.is_some(),
        default_payment_method: s.default_payment_method.as_ref().map(expandable_id),
        latest_invoice: s.latest_invoice.as_ref().map(expandable_id),
        created_at: ts(s.created),
        source_created,
    };
    (row, items)
}

#[derive(Debug, Clone, PartialEq, Insertable, AsChangeset)]
#[diesel(table_name = stripe_invoices)]
#[diesel(treat_none_as_null = true)]
pub struct InvoiceRow {
    pub tenant_id: String,
    pub account_id: String,
    pub stripe_customer_id: String,
    pub stripe_invoice_id: String,
    pub stripe_subscription_id: Option<String>,
    pub number: Option<String>,
    pub amount_cents: i64,
    pub amount_paid: i64,
    pub amount_remaining: i64,
    pub total: i64,
    pub currency: String,
    pub status: Option<String>,
    pub billing_reason: Option<String>,
    pub collection_method: Option<String>,
    pub due_date: Option<DateTime<Utc>>,
    pub paid_at: Option<DateTime<Utc>>,
    pub attempt_count: i32,
    pub next_payment_attempt: Option<DateTime<Utc>>,
    pub period_start: Option<DateTime<Utc>>,
    pub period_end: Option<DateTime<Utc>>,
    pub hosted_invoice_url: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub source_created: i64,
}

#[derive(Debug, Clone, PartialEq, Insertable)]
#[diesel(table_name = invoice_lines)]
pub struct LineRow {
    pub tenant_id: String,
    pub account_id: String,
    pub stripe_invoice_id: String,
    pub line_id: String,
    pub stripe_subscription_id: Option<String>,
    pub price_id: Option<String>,
    pub description: Option<String>,
    pub amount: i64,
    pub currency: String,
    pub quantity: Option<i64>,
    pub period_start: Option<DateTime<Utc>>,
    pub period_end: Option<DateTime<Utc>>,
}

/// Which payment (a PaymentIntent, or a charge paid out of band) collects an invoice.
#[derive(Debug, Clone, PartialEq, Insertable)]
#[diesel(table_name = invoice_payments)]
pub struct InvoicePaymentRow {
    pub tenant_id: String,
    pub account_id: String,
    pub invoice_payment_id: String,
    pub stripe_invoice_id: String,
    pub payment_intent_id: Option<String>,
    pub charge_id: Option<String>,
    pub status: String,
    pub source_created: i64,
}

/// An invoice as stored: its row, its lines, and its payments when the object carried them
/// (`expand[]=payments`; webhooks never do, and then the links we hold stay as they are).
#[derive(Debug, Clone, PartialEq)]
pub struct InvoiceRows {
    pub invoice: InvoiceRow,
    pub lines: Vec<LineRow>,
    pub payments: Option<Vec<InvoicePaymentRow>>,
}

/// Invoices without an id (upcoming previews) are not stored: `None`.
pub fn invoice_rows(scope: &Scope, inv: &Invoice, source_created: i64) -> Option<InvoiceRows> {
    let id = inv.id.as_ref()?.as_str().to_owned();
    // Basil and later: the subscription sits under `parent`; older versions at the top.
    let subscription = inv
        .parent
        .as_ref()
        .and_then(|p| p.subscription_details.as_ref())
        .map(|d| expandable_id(&d.subscription))
        .or_else(|| inv.subscription.as_ref().map(expandable_id));
    let lines = inv
        .lines
        .data
        .iter()
        .map(|line| line_row(scope, &id, line))
        .collect();
    let row = InvoiceRow {
        tenant_id: scope.tenant_id.clone(),
        account_id: scope.account_id.clone(),
        stripe_customer_id: inv.customer.as_ref().map(expandable_id).unwrap_or_default(),
        stripe_invoice_id: id,
        stripe_subscription_id: subscription,
        number: inv.number.clone(),
        amount_cents: inv.amount_due,
        amount_paid: inv.amount_paid,
        amount_remaining: inv.amount_remaining,
        total: inv.total,
        currency: inv.currency.to_string(),
        status: inv.status.as_ref().map(|s| s.as_str().to_owned()),
        billing_reason: inv.billing_reason.as_ref().map(|r| r.as_str().to_owned()),
        collection_method: Some(inv.collection_method.as_str().to_owned()),
        due_date: inv.due_date.and_then(ts),
        paid_at: inv.status_transitions.paid_at.and_then(ts),
        attempt_count: i32::try_from(inv.attempt_count).unwrap_or(i32::MAX),
        next_payment_attempt: inv.next_payment_attempt.and_then(ts),
        period_start: ts(inv.period_start),
        period_end: ts(inv.period_end),
        hosted_invoice_url: inv.hosted_invoice_url.clone(),
        created_at: ts(inv.created),
        source_created,
    };
    let payments = inv.payments.as_ref().map(|list| {
        list.data
            .iter()
            .filter_map(|p| {
                let payment_intent_id = p.payment.payment_intent.as_ref().map(expandable_id);
                let charge_id = p.payment.charge.as_ref().map(expandable_id);
                (payment_intent_id.is_some() || charge_id.is_some()).then(|| InvoicePaymentRow {
                    tenant_id: scope.tenant_id.clone(),
                    account_id: scope.account_id.clone(),
                    invoice_payment_id: p.id.as_str().to_owned(),
                    stripe_invoice_id: row.stripe_invoice_id.clone(),
                    payment_intent_id,
                    charge_id,
                    status: p.status.clone(),
                    source_created,
                })
            })
            .collect()
    });
    Some(InvoiceRows {
        invoice: row,
        lines,
        payments,
    })
}

fn line_row(scope: &Scope, invoice_id: &str, line: &InvoiceLineItem) -> LineRow {
    let subscription = line
        .parent
        .as_ref()
        .and_then(|p| p.subscription_item_details.as_ref())
        .and_then(|d| d.subscription.clone())
        .or_else(|| line.subscription.as_ref().map(expandable_id));
    LineRow {
        tenant_id: scope.tenant_id.clone(),
        account_id: scope.account_id.clone(),
        stripe_invoice_id: invoice_id.to_owned(),
        line_id: line.id.as_str().to_owned(),
        stripe_subscription_id: subscription,
        price_id: line
            .pricing
            .as_ref()
            .and_then(|p| p.price_details.as_ref())
            .map(|d| expandable_id(&d.price)),
        description: line.description.clone(),
        amount: line.amount,
        currency: line.currency.to_string(),
        quantity: line.quantity.and_then(|q| i64::try_from(q).ok()),
        period_start: ts(line.period.start),
        period_end: ts(line.period.end),
    }
}

#[derive(Debug, Clone, PartialEq, Insertable, AsChangeset)]
#[diesel(table_name = payment_attempts)]
#[diesel(treat_none_as_null = true)]
pub struct AttemptRow {
    pub tenant_id: String,
    pub account_id: String,
    pub charge_id: String,
    pub stripe_customer_id: Option<String>,
    pub payment_intent_id: Option<String>,
    pub stripe_invoice_id: Option<String>,
    pub attempted_at: DateTime<Utc>,
    pub amount: i64,
    pub currency: String,
    pub outcome: String,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub attempt_number: Option<i32>,
    pub source_created: i64,
}

pub fn attempt_row(scope: &Scope, ch: &Charge, source_created: i64) -> AttemptRow {
    use stripe_api::stripe_shared::ChargeStatus;
    let outcome = match ch.status {
        ChargeStatus::Succeeded => "succeeded",
        ChargeStatus::Failed => "failed",
        _ => "pending",
    };
    AttemptRow {
        tenant_id: scope.tenant_id.clone(),
        account_id: scope.account_id.clone(),
        charge_id: ch.id.as_str().to_owned(),
        stripe_customer_id: ch.customer.as_ref().map(expandable_id),
        payment_intent_id: ch.payment_intent.as_ref().map(expandable_id),
        stripe_invoice_id: None,
        attempted_at: ts(ch.created).unwrap_or_default(),
        amount: ch.amount,
        currency: ch.currency.to_string(),
        outcome: outcome.to_owned(),
        failure_code: ch.failure_code.clone(),
        failure_message: ch.failure_message.clone(),
        attempt_number: None,
        source_created,
    }
}

#[derive(Debug, Clone, PartialEq, Insertable, AsChangeset, Queryable, Selectable)]
#[diesel(table_name = disputes)]
#[diesel(treat_none_as_null = true)]
pub struct DisputeRow {
    pub tenant_id: String,
    pub account_id: String,
    pub dispute_id: String,
    pub charge_id: String,
    pub payment_intent_id: Option<String>,
    /// The disputed charge's customer; `None` until known.
    pub stripe_customer_id: Option<String>,
    pub amount: i64,
    pub currency: String,
    pub reason: String,
    pub status: String,
    pub evidence_due_by: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub source_created: i64,
}

impl DisputeRow {
    /// Whether `self` says something `held` did not: what consumers of `DisputeChanged`
    /// see (the read time alone is not a change).
    pub fn changes(&self, held: Option<&DisputeRow>) -> bool {
        held.is_none_or(|h| {
            (
                &h.charge_id,
                &h.payment_intent_id,
                &h.stripe_customer_id,
                h.amount,
                &h.currency,
                &h.reason,
                &h.status,
                h.evidence_due_by,
            ) != (
                &self.charge_id,
                &self.payment_intent_id,
                &self.stripe_customer_id,
                self.amount,
                &self.currency,
                &self.reason,
                &self.status,
                self.evidence_due_by,
            )
        })
    }
}

/// A dispute Stripe sent that we cannot keep as one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DisputeRowError {
    #[error("dispute {dispute}: {error}")]
    Id {
        dispute: String,
        error: domain::ids::IdError,
    },
    #[error("dispute {dispute}: {error}")]
    Status {
        dispute: String,
        error: domain::risk::UnknownDisputeStatus,
    },
    #[error("dispute {dispute}: negative amount {amount}")]
    NegativeAmount { dispute: String, amount: i64 },
    #[error("dispute {dispute}: no charge")]
    NoCharge { dispute: String },
}

/// The disputed charge's id (the dispute may carry it expanded).
pub fn dispute_charge(d: &Dispute) -> String {
    expandable_id(&d.charge)
}

/// The disputed charge's customer, when the dispute came with its charge expanded.
pub fn dispute_charge_customer(d: &Dispute) -> Option<String> {
    match &d.charge {
        Expandable::Object(charge) => charge.customer.as_ref().map(expandable_id),
        Expandable::Id(_) => None,
    }
}

/// Maps a dispute; `customer` is the disputed charge's (Stripe's dispute names none).
pub fn dispute_row(
    scope: &Scope,
    d: &Dispute,
    customer: Option<String>,
    source_created: i64,
) -> Result<DisputeRow, DisputeRowError> {
    let dispute = d.id.as_str().to_owned();
    domain::risk::DisputeId::parse(&dispute).map_err(|error| DisputeRowError::Id {
        dispute: dispute.clone(),
        error,
    })?;
    let status = d.status.as_str();
    status
        .parse::<domain::risk::DisputeStatus>()
        .map_err(|error| DisputeRowError::Status {
            dispute: dispute.clone(),
            error,
        })?;
    if d.amount < 0 {
        return Err(DisputeRowError::NegativeAmount {
            dispute,
            amount: d.amount,
        });
    }
    let charge_id = expandable_id(&d.charge);
    if charge_id.is_empty() {
        return Err(DisputeRowError::NoCharge { dispute });
    }
    Ok(DisputeRow {
        tenant_id: scope.tenant_id.clone(),
        account_id: scope.account_id.clone(),
        dispute_id: dispute,
        charge_id,
        payment_intent_id: d.payment_intent.as_ref().map(expandable_id),
        stripe_customer_id: customer.or_else(|| dispute_charge_customer(d)),
        amount: d.amount,
        currency: d.currency.to_string(),
        reason: d.reason.clone(),
        status: status.to_owned(),
        evidence_due_by: d.evidence_details.due_by.filter(|t| *t > 0).and_then(ts),
        created_at: ts(d.created).unwrap_or_default(),
        source_created,
    })
}

#[cfg(test)]
mod dispute_tests {
    use super::*;

    fn scope() -> Scope {
        Scope {
            tenant_id: "t1".into(),
            account_id: "acct_1".into(),
        }
    }

    /// A dispute as the fake (and Stripe) renders it, with `charge` as an id or expanded.
    fn dispute(charge: serde_json::Value, status: &str) -> Dispute {
        let json = serde_json::json!({
            "id": "dp_1", "object": "dispute", "amount": 4900, "balance_transactions": [],
            "charge": charge, "created": 1_700_000_000, "currency": "usd",
            "enhanced_eligibility_types": [],
            "evidence": {"enhanced_evidence": {}},
            "evidence_details": {"due_by": 1_700_604_800, "enhanced_eligibility": {},
                "has_evidence": false, "past_due": false, "submission_count": 0},
            "is_charge_refundable": false, "livemode": false, "metadata": {},
            "network_reason_code": null, "payment_intent": "pi_1",
            "payment_method_details": null, "reason": "fraudulent", "status": status,
        });
        serde_path_to_error::deserialize(json).unwrap()
    }

    #[test]
    fn a_dispute_maps_with_the_charges_customer() {
        let row = dispute_row(
            &scope(),
            &dispute("ch_1".into(), "needs_response"),
            Some("cus_1".into()),
            1_700_000_001,
        )
        .unwrap();
        assert_eq!(row.dispute_id, "dp_1");
        assert_eq!(row.charge_id, "ch_1");
        assert_eq!(row.payment_intent_id.as_deref(), Some("pi_1"));
        assert_eq!(row.stripe_customer_id.as_deref(), Some("cus_1"));
        assert_eq!((row.amount, row.currency.as_str()), (4900, "usd"));
        assert_eq!(row.status, "needs_response");
        assert_eq!(row.reason, "fraudulent");
        assert_eq!(row.evidence_due_by, ts(1_700_604_800));
        assert_eq!(row.created_at, ts(1_700_000_000).unwrap());
        assert_eq!(row.source_created, 1_700_000_001);
        // Without a known customer, and with the charge not expanded: unknown.
        let unknown = dispute_row(&scope(), &dispute("ch_1".into(), "won"), None, 1).unwrap();
        assert_eq!(unknown.stripe_customer_id, None);
    }

    #[test]
    fn what_we_cannot_keep_is_refused_by_name() {
        let mut d = dispute("ch_1".into(), "needs_response");
        d.amount = -1;
        assert_eq!(
            dispute_row(&scope(), &d, None, 1),
            Err(DisputeRowError::NegativeAmount {
                dispute: "dp_1".into(),
                amount: -1
            })
        );
        let odd = dispute("ch_1".into(), "being_argued");
        assert!(matches!(
            dispute_row(&scope(), &odd, None, 1),
            Err(DisputeRowError::Status { .. })
        ));
        let no_charge = dispute("".into(), "won");
        assert_eq!(
            dispute_row(&scope(), &no_charge, None, 1),
            Err(DisputeRowError::NoCharge {
                dispute: "dp_1".into()
            })
        );
    }

    #[test]
    fn only_what_consumers_see_is_a_change() {
        let row = dispute_row(
            &scope(),
            &dispute("ch_1".into(), "needs_response"),
            Some("cus_1".into()),
            10,
        )
        .unwrap();
        assert!(row.changes(None));
        let reread = DisputeRow {
            source_created: 99,
            ..row.clone()
        };
        assert!(
            !reread.changes(Some(&row)),
            "a later read of the same state"
        );
        for changed in [
            DisputeRow {
                status: "under_review".into(),
                ..row.clone()
            },
            DisputeRow {
                amount: 100,
                ..row.clone()
            },
            DisputeRow {
                evidence_due_by: None,
                ..row.clone()
            },
            DisputeRow {
                stripe_customer_id: Some("cus_2".into()),
                ..row.clone()
            },
        ] {
            assert!(changed.changes(Some(&row)), "{changed:?}");
        }
    }
}
