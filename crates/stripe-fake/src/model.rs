//! Stripe objects as typed structs whose serde output is Stripe's JSON shape for the
//! pinned API version ([`API_VERSION`], "basil"). Fields the fake never fills are kept
//! (as `null`, `[]` or `{}`) so clients that expect them find them. Fields marked
//! `#[serde(skip)]` are the fake's own bookkeeping and never leave the process.

use serde::{Serialize, Serializer};
use std::collections::BTreeMap;

/// The API version the fake speaks and reports in `Stripe-Version`.
pub const API_VERSION: &str = "2025-03-31.basil";

pub type Metadata = BTreeMap<String, String>;

/// Serialises as `null`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Null;
impl Serialize for Null {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_none()
    }
}

/// Serialises as `[]`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EmptyList;
impl Serialize for EmptyList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        s.serialize_seq(Some(0))?.end()
    }
}

/// Serialises as `{}`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EmptyObj;
impl Serialize for EmptyObj {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        s.serialize_map(Some(0))?.end()
    }
}

/// A constant string field (`object`, `type`, ...).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lit(pub &'static str);
impl Serialize for Lit {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

/// What every stored object tells the store.
pub trait StripeObject: Serialize {
    /// The `object` value, also used in "No such <object>" messages.
    const OBJECT: &'static str;
    fn id(&self) -> &str;
    fn created(&self) -> i64;
    fn customer_id(&self) -> Option<&str> {
        None
    }
}

macro_rules! stripe_object {
    ($t:ty, $name:literal) => {
        impl StripeObject for $t {
            const OBJECT: &'static str = $name;
            fn id(&self) -> &str {
                &self.id
            }
            fn created(&self) -> i64 {
                self.created
            }
        }
    };
    ($t:ty, $name:literal, customer) => {
        impl StripeObject for $t {
            const OBJECT: &'static str = $name;
            fn id(&self) -> &str {
                &self.id
            }
            fn created(&self) -> i64 {
                self.created
            }
            fn customer_id(&self) -> Option<&str> {
                Some(&self.customer)
            }
        }
    };
}

// ---------------------------------------------------------------- Account (Connect)

#[derive(Debug, Clone, Serialize)]
pub struct BusinessProfile {
    pub mcc: Null,
    pub name: Option<String>,
    pub product_description: Null,
    pub support_email: Option<String>,
    pub support_phone: Null,
    pub support_url: Null,
    pub url: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Capabilities {
    pub card_payments: &'static str,
    pub transfers: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct AccountSettingsDashboard {
    pub display_name: Option<String>,
    pub timezone: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct AccountSettings {
    pub dashboard: AccountSettingsDashboard,
}

#[derive(Debug, Clone, Serialize)]
pub struct Account {
    pub id: String,
    pub object: Lit,
    pub business_profile: BusinessProfile,
    pub business_type: &'static str,
    pub capabilities: Capabilities,
    pub charges_enabled: bool,
    pub country: &'static str,
    pub created: i64,
    pub default_currency: String,
    pub details_submitted: bool,
    pub email: Option<String>,
    pub metadata: Metadata,
    pub payouts_enabled: bool,
    pub settings: AccountSettings,
    #[serde(rename = "type")]
    pub kind: &'static str,
}
stripe_object!(Account, "account");

impl Account {
    pub fn new(id: String, name: &str, created: i64) -> Self {
        let slug: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_lowercase();
        Account {
            id,
            object: Lit("account"),
            business_profile: BusinessProfile {
                mcc: Null,
                name: Some(name.to_string()),
                product_description: Null,
                support_email: Some(format!("support@{slug}.example")),
                support_phone: Null,
                support_url: Null,
                url: Some(format!("https://{slug}.example")),
            },
            business_type: "company",
            capabilities: Capabilities {
                card_payments: "active",
                transfers: "active",
            },
            charges_enabled: true,
            country: "US",
            created,
            default_currency: "usd".into(),
            details_submitted: true,
            email: Some(format!("billing@{slug}.example")),
            metadata: Metadata::new(),
            payouts_enabled: true,
            settings: AccountSettings {
                dashboard: AccountSettingsDashboard {
                    display_name: Some(name.to_string()),
                    timezone: "Etc/UTC",
                },
            },
            kind: "standard",
        }
    }
}

// ---------------------------------------------------------------- Customer

#[derive(Debug, Clone, Serialize)]
pub struct InvoiceSettings {
    pub custom_fields: Null,
    pub default_payment_method: Option<String>,
    pub footer: Null,
    pub rendering_options: Null,
}

#[derive(Debug, Clone, Serialize)]
pub struct Customer {
    pub id: String,
    pub object: Lit,
    pub address: Null,
    pub balance: i64,
    pub created: i64,
    pub currency: Option<String>,
    pub default_source: Null,
    pub delinquent: bool,
    pub description: Option<String>,
    pub discount: Null,
    pub email: Option<String>,
    pub invoice_prefix: String,
    pub invoice_settings: InvoiceSettings,
    pub livemode: bool,
    pub metadata: Metadata,
    pub name: Option<String>,
    pub next_invoice_sequence: i64,
    pub phone: Option<String>,
    pub preferred_locales: Vec<String>,
    pub shipping: Null,
    pub tax_exempt: &'static str,
    pub test_clock: Null,
}
stripe_object!(Customer, "customer");

impl Customer {
    pub fn new(id: String, created: i64, invoice_prefix: String) -> Self {
        Customer {
            id,
            object: Lit("customer"),
            address: Null,
            balance: 0,
            created,
            currency: None,
            default_source: Null,
            delinquent: false,
            description: None,
            discount: Null,
            email: None,
            invoice_prefix,
            invoice_settings: InvoiceSettings {
                custom_fields: Null,
                default_payment_method: None,
                footer: Null,
                rendering_options: Null,
            },
            livemode: false,
            metadata: Metadata::new(),
            name: None,
            next_invoice_sequence: 1,
            phone: None,
            preferred_locales: vec![],
            shipping: Null,
            tax_exempt: "none",
            test_clock: Null,
        }
    }
}

// ---------------------------------------------------------------- Product / Price / Coupon

#[derive(Debug, Clone, Serialize)]
pub struct Product {
    pub id: String,
    pub object: Lit,
    pub active: bool,
    pub created: i64,
    pub default_price: Option<String>,
    pub description: Option<String>,
    pub images: Vec<String>,
    pub livemode: bool,
    pub marketing_features: EmptyList,
    pub metadata: Metadata,
    pub name: String,
    pub package_dimensions: Null,
    pub shippable: Null,
    pub statement_descriptor: Null,
    pub tax_code: Null,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub unit_label: Option<String>,
    pub updated: i64,
    pub url: Null,
}
stripe_object!(Product, "product");

impl Product {
    pub fn new(id: String, name: String, created: i64) -> Self {
        Product {
            id,
            object: Lit("product"),
            active: true,
            created,
            default_price: None,
            description: None,
            images: vec![],
            livemode: false,
            marketing_features: EmptyList,
            metadata: Metadata::new(),
            name,
            package_dimensions: Null,
            shippable: Null,
            statement_descriptor: Null,
            tax_code: Null,
            kind: "service",
            unit_label: None,
            updated: created,
            url: Null,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Interval {
    Day,
    Week,
    Month,
    Year,
}

impl Interval {
    pub fn parse(s: &str) -> Option<Interval> {
        Some(match s {
            "day" => Interval::Day,
            "week" => Interval::Week,
            "month" => Interval::Month,
            "year" => Interval::Year,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Interval::Day => "day",
            Interval::Week => "week",
            Interval::Month => "month",
            Interval::Year => "year",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Recurring {
    pub interval: Interval,
    pub interval_count: i64,
    pub meter: Null,
    pub trial_period_days: Option<i64>,
    pub usage_type: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Tier {
    pub flat_amount: Option<i64>,
    pub flat_amount_decimal: Option<String>,
    pub unit_amount: Option<i64>,
    pub unit_amount_decimal: Option<String>,
    /// `None` is the last, unbounded tier ("inf" in requests).
    pub up_to: Option<i64>,
}

impl Tier {
    pub fn new(up_to: Option<i64>, unit_amount: i64, flat_amount: i64) -> Self {
        Tier {
            flat_amount: Some(flat_amount),
            flat_amount_decimal: Some(flat_amount.to_string()),
            unit_amount: Some(unit_amount),
            unit_amount_decimal: Some(unit_amount.to_string()),
            up_to,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Price {
    pub id: String,
    pub object: Lit,
    pub active: bool,
    pub billing_scheme: &'static str,
    pub created: i64,
    pub currency: String,
    pub custom_unit_amount: Null,
    pub livemode: bool,
    pub lookup_key: Option<String>,
    pub metadata: Metadata,
    pub nickname: Option<String>,
    pub product: String,
    pub recurring: Option<Recurring>,
    pub tax_behavior: &'static str,
    /// Stripe only returns `tiers` when expanded; the fake always includes them on
    /// tiered prices so a sync can compute MRR without another call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tiers: Option<Vec<Tier>>,
    pub tiers_mode: Option<&'static str>,
    pub transform_quantity: Null,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub unit_amount: Option<i64>,
    pub unit_amount_decimal: Option<String>,
}
stripe_object!(Price, "price");

impl Price {
    pub fn is_metered(&self) -> bool {
        self.recurring
            .as_ref()
            .is_some_and(|r| r.usage_type == "metered")
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Coupon {
    pub id: String,
    pub object: Lit,
    pub amount_off: Option<i64>,
    pub created: i64,
    pub currency: Option<String>,
    pub duration: &'static str,
    pub duration_in_months: Option<i64>,
    pub livemode: bool,
    pub max_redemptions: Null,
    pub metadata: Metadata,
    pub name: Option<String>,
    /// Percent with two decimals, kept as hundredths of a percent so no float is stored.
    #[serde(serialize_with = "ser_percent")]
    pub percent_off: Option<i64>,
    pub redeem_by: Null,
    pub times_redeemed: i64,
    pub valid: bool,
}
stripe_object!(Coupon, "coupon");

fn ser_percent<S: Serializer>(v: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        // Stripe renders percent_off as a JSON number (e.g. 25.0 or 12.5).
        Some(bp) => s.serialize_f64(*bp as f64 / 100.0),
        None => s.serialize_none(),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Discount {
    pub id: String,
    pub object: Lit,
    pub checkout_session: Null,
    pub coupon: Coupon,
    pub customer: String,
    pub end: Option<i64>,
    pub invoice: Null,
    pub invoice_item: Null,
    pub promotion_code: Null,
    /// Where the discount comes from (newer API versions; basil also renders `coupon`).
    pub source: DiscountSource,
    pub start: i64,
    pub subscription: Option<String>,
    pub subscription_item: Null,
}

#[derive(Debug, Clone, Serialize)]
pub struct DiscountSource {
    /// The coupon's id (expandable in Stripe; the fake renders the id).
    pub coupon: String,
    #[serde(rename = "type")]
    pub kind: Lit,
}

impl DiscountSource {
    pub fn coupon(id: &str) -> Self {
        DiscountSource {
            coupon: id.to_owned(),
            kind: Lit("coupon"),
        }
    }
}

// ---------------------------------------------------------------- Subscription

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub id: String,
    pub object: Lit,
    pub active: bool,
    pub amount: Option<i64>,
    pub amount_decimal: Option<String>,
    pub billing_scheme: &'static str,
    pub created: i64,
    pub currency: String,
    pub interval: Interval,
    pub interval_count: i64,
    pub livemode: bool,
    pub metadata: Metadata,
    pub meter: Null,
    pub nickname: Option<String>,
    pub product: String,
    pub tiers_mode: Option<&'static str>,
    pub transform_usage: Null,
    pub trial_period_days: Null,
    pub usage_type: &'static str,
}

impl Plan {
    /// The legacy `plan` view of a recurring price, as Stripe still renders on items.
    pub fn from_price(p: &Price) -> Plan {
        let (interval, interval_count, usage_type) = match &p.recurring {
            Some(r) => (r.interval, r.interval_count, r.usage_type),
            None => (Interval::Month, 1, "licensed"),
        };
        Plan {
            id: p.id.clone(),
            object: Lit("plan"),
            active: p.active,
            amount: p.unit_amount,
            amount_decimal: p.unit_amount_decimal.clone(),
            billing_scheme: p.billing_scheme,
            created: p.created,
            currency: p.currency.clone(),
            interval,
            interval_count,
            livemode: false,
            metadata: p.metadata.clone(),
            meter: Null,
            nickname: p.nickname.clone(),
            product: p.product.clone(),
            tiers_mode: p.tiers_mode,
            transform_usage: Null,
            trial_period_days: Null,
            usage_type,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SubscriptionItem {
    pub id: String,
    pub object: Lit,
    pub billing_thresholds: Null,
    pub created: i64,
    pub current_period_end: i64,
    pub current_period_start: i64,
    pub discounts: Vec<String>,
    pub metadata: Metadata,
    pub plan: Plan,
    pub price: Price,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantity: Option<i64>,
    pub subscription: String,
    pub tax_rates: EmptyList,
}

#[derive(Debug, Clone, Serialize)]
pub struct ListOf<T> {
    pub object: Lit,
    pub data: Vec<T>,
    pub has_more: bool,
    pub total_count: i64,
    pub url: String,
}

impl<T> ListOf<T> {
    pub fn new(data: Vec<T>, url: String) -> Self {
        ListOf {
            object: Lit("list"),
            total_count: data.len() as i64,
            data,
            has_more: false,
            url,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct AutomaticTax {
    pub disabled_reason: Null,
    pub enabled: bool,
    pub liability: Null,
}

#[derive(Debug, Clone, Serialize)]
pub struct CancellationDetails {
    pub comment: Option<String>,
    pub feedback: Option<String>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PauseCollection {
    pub behavior: String,
    pub resumes_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Issuer {
    #[serde(rename = "type")]
    pub kind: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct SubInvoiceSettings {
    pub account_tax_ids: Null,
    pub issuer: Issuer,
}

#[derive(Debug, Clone, Serialize)]
pub struct PaymentSettings {
    pub payment_method_options: Null,
    pub payment_method_types: Null,
    pub save_default_payment_method: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct TrialEndBehavior {
    pub missing_payment_method: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct TrialSettings {
    pub end_behavior: TrialEndBehavior,
}

/// `billing_mode`: how prorations and periods are computed; the fake bills `classic`.
#[derive(Debug, Clone, Serialize)]
pub struct BillingMode {
    #[serde(rename = "type")]
    pub kind: Lit,
}

impl BillingMode {
    pub fn classic() -> Self {
        BillingMode {
            kind: Lit("classic"),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Subscription {
    pub id: String,
    pub object: Lit,
    pub application: Null,
    pub application_fee_percent: Null,
    pub automatic_tax: AutomaticTax,
    pub billing_cycle_anchor: i64,
    pub billing_cycle_anchor_config: Null,
    pub billing_mode: BillingMode,
    /// Billing schedules (newer API versions); the fake never creates any.
    pub billing_schedules: EmptyList,
    pub billing_thresholds: Null,
    pub cancel_at: Option<i64>,
    pub cancel_at_period_end: bool,
    pub canceled_at: Option<i64>,
    pub cancellation_details: CancellationDetails,
    pub collection_method: &'static str,
    pub created: i64,
    pub currency: String,
    pub customer: String,
    pub days_until_due: Option<i64>,
    pub default_payment_method: Option<String>,
    pub default_source: Null,
    pub default_tax_rates: EmptyList,
    pub description: Option<String>,
    /// Deprecated single discount, still rendered by Stripe next to `discounts`.
    pub discount: Option<Discount>,
    /// Discount ids (expandable with `expand[]=discounts`).
    pub discounts: Vec<String>,
    pub ended_at: Option<i64>,
    pub invoice_settings: SubInvoiceSettings,
    pub items: ListOf<SubscriptionItem>,
    pub latest_invoice: Option<String>,
    pub livemode: bool,
    pub metadata: Metadata,
    pub next_pending_invoice_item_invoice: Null,
    pub on_behalf_of: Null,
    pub pause_collection: Option<PauseCollection>,
    pub payment_settings: PaymentSettings,
    pub pending_invoice_item_interval: Null,
    pub pending_setup_intent: Null,
    pub pending_update: Null,
    pub schedule: Null,
    pub start_date: i64,
    pub status: &'static str,
    pub test_clock: Null,
    pub transfer_data: Null,
    pub trial_end: Option<i64>,
    pub trial_settings: TrialSettings,
    pub trial_start: Option<i64>,
    /// Whether `customer.subscription.trial_will_end` was already sent.
    #[serde(skip)]
    pub trial_will_end_sent: bool,
}
stripe_object!(Subscription, "subscription", customer);

impl Subscription {
    /// The billing period shared by the items (the fake keeps items aligned).
    pub fn period(&self) -> (i64, i64) {
        self.items
            .data
            .first()
            .map(|i| (i.current_period_start, i.current_period_end))
            .unwrap_or((self.start_date, self.start_date))
    }

    pub fn set_period(&mut self, start: i64, end: i64) {
        for it in &mut self.items.data {
            it.current_period_start = start;
            it.current_period_end = end;
        }
    }

    pub fn interval(&self) -> (Interval, i64) {
        self.items
            .data
            .first()
            .and_then(|i| i.price.recurring.as_ref())
            .map(|r| (r.interval, r.interval_count))
            .unwrap_or((Interval::Month, 1))
    }
}

/// All statuses a subscription can have.
pub const SUB_STATUSES: &[&str] = &[
    "incomplete",
    "incomplete_expired",
    "trialing",
    "active",
    "past_due",
    "canceled",
    "unpaid",
    "paused",
];

pub fn sub_status(s: &str) -> Option<&'static str> {
    SUB_STATUSES.iter().copied().find(|x| *x == s)
}

// ---------------------------------------------------------------- Invoice

#[derive(Debug, Clone, Serialize)]
pub struct Period {
    pub end: i64,
    pub start: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PriceDetails {
    pub price: String,
    pub product: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct LinePricing {
    pub price_details: PriceDetails,
    #[serde(rename = "type")]
    pub kind: Lit,
    pub unit_amount_decimal: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProrationDetails {
    pub credited_items: Null,
}

#[derive(Debug, Clone, Serialize)]
pub struct SubscriptionItemDetails {
    pub invoice_item: Null,
    pub proration: bool,
    pub proration_details: ProrationDetails,
    pub subscription: String,
    pub subscription_item: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct LineParent {
    pub invoice_item_details: Null,
    pub subscription_item_details: Option<SubscriptionItemDetails>,
    #[serde(rename = "type")]
    pub kind: Lit,
}

#[derive(Debug, Clone, Serialize)]
pub struct InvoiceLine {
    pub id: String,
    pub object: Lit,
    pub amount: i64,
    pub currency: String,
    pub description: Option<String>,
    pub discount_amounts: EmptyList,
    pub discountable: bool,
    pub discounts: EmptyList,
    pub invoice: String,
    pub livemode: bool,
    pub metadata: Metadata,
    pub parent: LineParent,
    pub period: Period,
    pub pretax_credit_amounts: EmptyList,
    pub pricing: LinePricing,
    pub quantity: Option<i64>,
    /// Line amount before discounts and taxes (a required field since 2025 versions).
    pub subtotal: i64,
    pub taxes: EmptyList,
}

#[derive(Debug, Clone, Serialize)]
pub struct SubscriptionDetails {
    pub metadata: Metadata,
    pub subscription: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct InvoiceParent {
    pub quote_details: Null,
    pub subscription_details: Option<SubscriptionDetails>,
    #[serde(rename = "type")]
    pub kind: Lit,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct StatusTransitions {
    pub finalized_at: Option<i64>,
    pub marked_uncollectible_at: Option<i64>,
    pub paid_at: Option<i64>,
    pub voided_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DiscountAmount {
    pub amount: i64,
    pub discount: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct InvoicePaymentSettings {
    pub default_mandate: Null,
    pub payment_method_options: Null,
    pub payment_method_types: Null,
}

#[derive(Debug, Clone, Serialize)]
pub struct Invoice {
    pub id: String,
    pub object: Lit,
    pub account_country: &'static str,
    pub account_name: Option<String>,
    pub account_tax_ids: Null,
    pub amount_due: i64,
    pub amount_overpaid: i64,
    pub amount_paid: i64,
    pub amount_remaining: i64,
    pub amount_shipping: i64,
    pub application: Null,
    pub attempt_count: i64,
    pub attempted: bool,
    pub auto_advance: bool,
    pub automatic_tax: AutomaticTax,
    pub automatically_finalizes_at: Option<i64>,
    pub billing_reason: &'static str,
    pub collection_method: &'static str,
    pub confirmation_secret: Null,
    pub created: i64,
    pub currency: String,
    pub custom_fields: Null,
    pub customer: String,
    pub customer_address: Null,
    pub customer_email: Option<String>,
    pub customer_name: Option<String>,
    pub customer_phone: Null,
    pub customer_shipping: Null,
    pub customer_tax_exempt: &'static str,
    pub customer_tax_ids: EmptyList,
    pub default_payment_method: Null,
    pub default_source: Null,
    pub default_tax_rates: EmptyList,
    pub description: Option<String>,
    pub discounts: Vec<String>,
    pub due_date: Option<i64>,
    pub effective_at: Option<i64>,
    pub ending_balance: Option<i64>,
    pub footer: Null,
    pub from_invoice: Null,
    pub hosted_invoice_url: Option<String>,
    pub invoice_pdf: Option<String>,
    pub issuer: Issuer,
    pub last_finalization_error: Null,
    pub latest_revision: Null,
    pub lines: ListOf<InvoiceLine>,
    pub livemode: bool,
    pub metadata: Metadata,
    pub next_payment_attempt: Option<i64>,
    pub number: Option<String>,
    pub on_behalf_of: Null,
    pub parent: InvoiceParent,
    pub payment_settings: InvoicePaymentSettings,
    pub period_end: i64,
    pub period_start: i64,
    pub post_payment_credit_notes_amount: i64,
    pub pre_payment_credit_notes_amount: i64,
    pub receipt_number: Null,
    pub rendering: Null,
    pub shipping_cost: Null,
    pub shipping_details: Null,
    pub starting_balance: i64,
    pub statement_descriptor: Null,
    pub status: &'static str,
    pub status_transitions: StatusTransitions,
    pub subtotal: i64,
    pub subtotal_excluding_tax: Option<i64>,
    pub test_clock: Null,
    pub total: i64,
    pub total_discount_amounts: Vec<DiscountAmount>,
    pub total_excluding_tax: Option<i64>,
    pub total_pretax_credit_amounts: EmptyList,
    pub total_taxes: EmptyList,
    pub webhooks_delivered_at: Option<i64>,
    /// Subscription that produced the invoice (rendered under `parent` in basil).
    #[serde(skip)]
    pub subscription: Option<String>,
    /// Latest charge / payment intent (not rendered in basil; kept for legacy_fields).
    #[serde(skip)]
    pub charge: Option<String>,
    #[serde(skip)]
    pub payment_intent: Option<String>,
}
stripe_object!(Invoice, "invoice", customer);

pub const INVOICE_STATUSES: &[&str] = &["draft", "open", "paid", "uncollectible", "void"];

// ---------------------------------------------------------------- Payment method / charge / PI

#[derive(Debug, Clone, Serialize)]
pub struct Card {
    pub brand: String,
    pub country: Option<String>,
    pub exp_month: i64,
    pub exp_year: i64,
    pub funding: String,
    pub last4: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct BillingDetails {
    pub address: Null,
    pub email: Option<String>,
    pub name: Option<String>,
    pub phone: Null,
}

#[derive(Debug, Clone, Serialize)]
pub struct PaymentMethod {
    pub id: String,
    pub object: Lit,
    pub allow_redisplay: &'static str,
    pub billing_details: BillingDetails,
    pub card: Card,
    pub created: i64,
    pub customer: Option<String>,
    pub livemode: bool,
    pub metadata: Metadata,
    #[serde(rename = "type")]
    pub kind: Lit,
    /// Decline code charges on this card fail with (`None` = succeeds).
    #[serde(skip)]
    pub decline: Option<String>,
}

impl StripeObject for PaymentMethod {
    const OBJECT: &'static str = "payment_method";
    fn id(&self) -> &str {
        &self.id
    }
    fn created(&self) -> i64 {
        self.created
    }
    fn customer_id(&self) -> Option<&str> {
        self.customer.as_deref()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub advice_code: Null,
    pub network_advice_code: Null,
    pub network_decline_code: Null,
    pub network_status: &'static str,
    pub reason: Option<String>,
    pub risk_level: &'static str,
    pub seller_message: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct PaymentMethodDetails {
    pub card: Card,
    #[serde(rename = "type")]
    pub kind: Lit,
}

#[derive(Debug, Clone, Serialize)]
pub struct FraudDetails {}

#[derive(Debug, Clone, Serialize)]
pub struct Charge {
    pub id: String,
    pub object: Lit,
    pub amount: i64,
    pub amount_captured: i64,
    pub amount_refunded: i64,
    pub application: Null,
    pub application_fee: Null,
    pub application_fee_amount: Null,
    pub balance_transaction: Option<String>,
    pub billing_details: BillingDetails,
    pub calculated_statement_descriptor: Option<String>,
    pub captured: bool,
    pub created: i64,
    pub currency: String,
    pub customer: String,
    pub description: Option<String>,
    pub disputed: bool,
    pub failure_balance_transaction: Null,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub fraud_details: EmptyObj,
    pub livemode: bool,
    pub metadata: Metadata,
    pub on_behalf_of: Null,
    pub outcome: Outcome,
    pub paid: bool,
    pub payment_intent: Option<String>,
    pub payment_method: Option<String>,
    pub payment_method_details: Option<PaymentMethodDetails>,
    pub receipt_email: Option<String>,
    pub receipt_url: Option<String>,
    pub refunded: bool,
    pub review: Null,
    pub shipping: Null,
    pub statement_descriptor: Null,
    pub statement_descriptor_suffix: Null,
    pub status: &'static str,
    pub transfer_data: Null,
    pub transfer_group: Null,
    #[serde(skip)]
    pub invoice: Option<String>,
}
stripe_object!(Charge, "charge", customer);

#[derive(Debug, Clone, Serialize)]
pub struct LastPaymentError {
    pub charge: String,
    pub code: String,
    pub decline_code: Option<String>,
    pub doc_url: String,
    pub message: String,
    /// The full payment method object (Stripe embeds it here; it is not expandable).
    pub payment_method: Option<PaymentMethod>,
    #[serde(rename = "type")]
    pub kind: Lit,
}

#[derive(Debug, Clone, Serialize)]
pub struct PaymentIntent {
    pub id: String,
    pub object: Lit,
    pub amount: i64,
    pub amount_capturable: i64,
    pub amount_received: i64,
    pub application: Null,
    pub application_fee_amount: Null,
    pub automatic_payment_methods: Null,
    pub canceled_at: Null,
    pub cancellation_reason: Null,
    pub capture_method: &'static str,
    pub client_secret: String,
    pub confirmation_method: &'static str,
    pub created: i64,
    pub currency: String,
    pub customer: String,
    pub description: Option<String>,
    pub last_payment_error: Option<LastPaymentError>,
    pub latest_charge: Option<String>,
    pub livemode: bool,
    pub metadata: Metadata,
    pub next_action: Null,
    pub on_behalf_of: Null,
    pub payment_method: Option<String>,
    pub payment_method_types: Vec<&'static str>,
    pub receipt_email: Null,
    pub setup_future_usage: Null,
    pub shipping: Null,
    pub statement_descriptor: Null,
    pub status: &'static str,
    pub transfer_data: Null,
    pub transfer_group: Null,
    #[serde(skip)]
    pub invoice: Option<String>,
}
stripe_object!(PaymentIntent, "payment_intent", customer);

// ---------------------------------------------------------------- Dispute

/// A balance transaction as embedded in `dispute.balance_transactions`: the withdrawal when
/// a chargeback opens, and the reinstatement when it is won.
#[derive(Debug, Clone, Serialize)]
pub struct BalanceTransaction {
    pub id: String,
    pub object: Lit,
    pub amount: i64,
    pub available_on: i64,
    pub balance_type: &'static str,
    pub created: i64,
    pub currency: String,
    pub description: String,
    pub exchange_rate: Null,
    pub fee: i64,
    pub fee_details: Vec<FeeDetail>,
    pub net: i64,
    pub reporting_category: &'static str,
    pub source: String,
    pub status: &'static str,
    #[serde(rename = "type")]
    pub kind: Lit,
}

#[derive(Debug, Clone, Serialize)]
pub struct FeeDetail {
    pub amount: i64,
    pub application: Null,
    pub currency: String,
    pub description: &'static str,
    #[serde(rename = "type")]
    pub kind: Lit,
}

/// `dispute.evidence`: every field Stripe lists, `null` until evidence is submitted.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DisputeEvidence {
    pub access_activity_log: Null,
    pub billing_address: Null,
    pub cancellation_policy: Null,
    pub cancellation_policy_disclosure: Null,
    pub cancellation_rebuttal: Null,
    pub customer_communication: Null,
    pub customer_email_address: Null,
    pub customer_name: Null,
    pub customer_purchase_ip: Null,
    pub customer_signature: Null,
    pub duplicate_charge_documentation: Null,
    pub duplicate_charge_explanation: Null,
    pub duplicate_charge_id: Null,
    pub enhanced_evidence: EmptyObj,
    pub product_description: Option<String>,
    pub receipt: Null,
    pub refund_policy: Null,
    pub refund_policy_disclosure: Null,
    pub refund_refusal_explanation: Null,
    pub service_date: Null,
    pub service_documentation: Null,
    pub shipping_address: Null,
    pub shipping_carrier: Null,
    pub shipping_date: Null,
    pub shipping_documentation: Null,
    pub shipping_tracking_number: Null,
    pub uncategorized_file: Null,
    pub uncategorized_text: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvidenceDetails {
    pub due_by: Option<i64>,
    pub enhanced_eligibility: EmptyObj,
    pub has_evidence: bool,
    pub past_due: bool,
    pub submission_count: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DisputeCard {
    pub brand: String,
    /// `chargeback`, or `inquiry` for a `warning_*` dispute.
    pub case_type: &'static str,
    /// The card network the dispute came through (`visa`, `mastercard`, …).
    pub network: String,
    pub network_reason_code: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DisputePaymentMethodDetails {
    pub card: DisputeCard,
    #[serde(rename = "type")]
    pub kind: Lit,
}

/// A dispute (`/v1/disputes`). Stripe's object names no customer: it is reached through
/// the charge. The fake keeps the charge's customer for its own filtering only.
#[derive(Debug, Clone, Serialize)]
pub struct Dispute {
    pub id: String,
    pub object: Lit,
    pub amount: i64,
    pub balance_transactions: Vec<BalanceTransaction>,
    pub charge: String,
    pub created: i64,
    pub currency: String,
    pub enhanced_eligibility_types: EmptyList,
    pub evidence: DisputeEvidence,
    pub evidence_details: EvidenceDetails,
    pub is_charge_refundable: bool,
    pub livemode: bool,
    pub metadata: Metadata,
    pub network_reason_code: Option<String>,
    pub payment_intent: Option<String>,
    pub payment_method_details: Option<DisputePaymentMethodDetails>,
    pub reason: String,
    pub status: &'static str,
    #[serde(skip)]
    pub customer: String,
}
stripe_object!(Dispute, "dispute", customer);

// ---------------------------------------------------------------- Event

#[derive(Debug, Clone, Serialize)]
pub struct EventData {
    pub object: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_attributes: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventRequest {
    pub id: Option<String>,
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub id: String,
    pub object: Lit,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    pub api_version: &'static str,
    pub created: i64,
    pub data: EventData,
    pub livemode: bool,
    pub pending_webhooks: i64,
    pub request: EventRequest,
    #[serde(rename = "type")]
    pub kind: String,
}
stripe_object!(Event, "event");
