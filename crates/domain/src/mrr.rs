//! Monthly recurring revenue (MRR) of a Stripe subscription.
//!
//! The sync worker fills a [`SubscriptionForMrr`] from Stripe's subscription,
//! its items' prices and its discounts; [`subscription_mrr`] turns it into an
//! [`Mrr`] under an [`MrrPolicy`]. Everything here is exact integer/rational
//! arithmetic on minor units; no floats anywhere.
//!
//! # Rules
//!
//! We follow Stripe Billing analytics by default and make the debatable
//! choices configurable in [`MrrPolicy`].
//!
//! 1. **Status.** Only `active` and `past_due` count
//!    ([`MrrPolicy::counted_statuses`]). `trialing`, `incomplete`,
//!    `incomplete_expired`, `unpaid`, `canceled` and `paused` count 0, and so
//!    does a subscription with `pause_collection` set, whatever its status.
//! 2. **Cancellation requested.** With `cancel_at_period_end = true` the
//!    default, [`CancelAtPeriodEnd::StopAtRequest`], counts 0 from the moment
//!    cancellation is requested (Stripe's default: the revenue is already
//!    lost, and the CSM should see it now). [`CancelAtPeriodEnd::CountUntilPeriodEnd`]
//!    keeps counting until Stripe actually cancels (status becomes
//!    `canceled`).
//! 3. **Items.** Each item is priced for one billing interval and then
//!    normalised to a month; items are summed.
//!    - `per_unit`: `unit_amount × quantity` (`unit_amount_decimal` when
//!      present, so fractional minor units stay exact); with
//!      `transform_quantity` the quantity is first divided and rounded up or
//!      down as Stripe bills it.
//!    - `tiered` / `volume`: the whole quantity is billed at the tier it falls
//!      in: `quantity × unit_amount + flat_amount` of that tier.
//!    - `tiered` / `graduated`: each tier bills the units that fall in it,
//!      plus its flat amount when at least one unit falls in it.
//!    - quantity 0 counts 0 (no tier's flat amount applies).
//!    - `usage_type = metered` items count 0: usage is not recurring revenue
//!      until invoiced, and it is unknown in advance.
//!    - Free prices count 0 naturally. Tax is never part of a price here.
//! 4. **Normalising to a month** (`N` = `interval_count`):
//!    `month`/N → ÷ N; `year`/N → ÷ (12·N); `week`/N → × 52 ÷ 12 ÷ N;
//!    `day`/N → × 365 ÷ 12 ÷ N.
//! 5. **Discounts**, applied in the order given (Stripe's order), first the
//!    item's own discounts to that item, then the subscription's to the sum:
//!    - `forever` percent-off: × (1 − p/100).
//!    - `forever` amount-off: minus the amount, normalised to a month with the
//!      interval it is billed at (the item's; for a subscription-level
//!      discount, the shortest interval among the items, since it is taken off
//!      every invoice), and floored at 0.
//!    - `once` / `repeating`: ignored by default (Stripe's default: they are
//!      temporary and would make MRR dip and recover without any change in
//!      the customer's plan). With
//!      [`MrrPolicy::subtract_temporary_discounts`] they are subtracted
//!      like a `forever` one while active.
//!    - A discount whose `end` is at or before `as_of` has expired and is
//!      ignored under every policy.
//! 6. **Rounding.** The exact rational monthly amount is rounded **once**, at
//!    the end, to the currency's minor unit, half away from zero (which is
//!    half-up, as MRR is never negative): $10/year = 83.33… cents → 83;
//!    ¥30/year = ¥2.5 → ¥3. Rounding per item would make the sum depend on
//!    how a plan is split into items.
//! 7. **Currency.** A subscription has one currency, and so does its MRR.
//!    Totals over subscriptions are kept per currency ([`MoneyByCurrency`]);
//!    converting needs an explicit FX table, which is not this crate's job.
//!    ARR = 12 × MRR, taken from the rounded MRR so ARR and MRR reported side
//!    by side always agree.
//!
//! # Where we differ from other tools, and why
//!
//! - **ChartMogul** derives MRR from invoices (so metered usage and one-off
//!   charges show up once invoiced) and keeps counting a subscription whose
//!   invoices fail. We derive MRR from the subscription's current state, as
//!   Stripe does: it moves when the plan changes rather than when an invoice is
//!   issued, so a CSM sees a downgrade the moment it happens. Metered usage is
//!   excluded because it is not committed revenue. Like ChartMogul (and
//!   Stripe), `past_due` still counts; `unpaid` (Stripe stopped retrying) does
//!   not.
//! - **Baremetrics** treats a customer delinquent for over 30 days as churned.
//!   We let the account's Stripe dunning settings decide: the subscription
//!   counts until Stripe moves it to `unpaid` or `canceled`. Delinquency is a
//!   risk signal (payment failed, dunning), not churn, so it is not counted
//!   twice.
//!
//! # Example
//!
//! ```
//! use chrono::Utc;
//! use domain::{subscription_mrr, Currency, Interval, ItemForMrr, Money, MrrPolicy,
//!              PriceForMrr, SubscriptionForMrr, SubscriptionStatus};
//!
//! // 3 seats at $100 a year.
//! let subscription = SubscriptionForMrr {
//!     status: SubscriptionStatus::Active,
//!     currency: Currency::USD,
//!     items: vec![ItemForMrr::new(PriceForMrr::per_unit(10_000, Interval::Year, 1), 3)],
//!     discounts: vec![],
//!     cancel_at_period_end: false,
//!     pause_collection: false,
//! };
//! let mrr = subscription_mrr(&subscription, &MrrPolicy::default(), Utc::now()).unwrap();
//! assert_eq!(mrr.monthly, Money::new(2_500, Currency::USD));
//! assert_eq!(mrr.arr().unwrap(), Money::new(30_000, Currency::USD));
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::decimal::Decimal;
use crate::money::{Currency, Money, MoneyByCurrency, MoneyError};
use crate::ratio::Ratio;

/// Stripe's subscription `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    /// `incomplete`: the first payment has not succeeded yet.
    Incomplete,
    /// `incomplete_expired`: the first payment never succeeded.
    IncompleteExpired,
    /// `trialing`.
    Trialing,
    /// `active`.
    Active,
    /// `past_due`: a renewal payment failed; Stripe is retrying.
    PastDue,
    /// `canceled` (terminal).
    Canceled,
    /// `unpaid`: retries exhausted, invoices left open.
    Unpaid,
    /// `paused`: a trial ended without a payment method.
    Paused,
}

impl SubscriptionStatus {
    /// Every status, in declaration order.
    pub const ALL: [SubscriptionStatus; 8] = [
        Self::Incomplete,
        Self::IncompleteExpired,
        Self::Trialing,
        Self::Active,
        Self::PastDue,
        Self::Canceled,
        Self::Unpaid,
        Self::Paused,
    ];

    /// Stripe's spelling, e.g. `"past_due"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Incomplete => "incomplete",
            Self::IncompleteExpired => "incomplete_expired",
            Self::Trialing => "trialing",
            Self::Active => "active",
            Self::PastDue => "past_due",
            Self::Canceled => "canceled",
            Self::Unpaid => "unpaid",
            Self::Paused => "paused",
        }
    }
}

impl fmt::Display for SubscriptionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of Stripe's subscription statuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown subscription status {0:?}")]
pub struct UnknownStatus(pub String);

impl FromStr for SubscriptionStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, UnknownStatus> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

/// A price's billing interval unit (`recurring.interval`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    /// `day`
    Day,
    /// `week`
    Week,
    /// `month`
    Month,
    /// `year`
    Year,
}

/// `recurring.usage_type` of a price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UsageType {
    /// `licensed`: billed for the quantity on the subscription item.
    Licensed,
    /// `metered`: billed for reported usage; excluded from MRR.
    Metered,
}

/// A price's `recurring` block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Recurring {
    /// Interval unit.
    pub interval: Interval,
    /// Number of units per billing period (≥ 1).
    pub interval_count: u32,
    /// Licensed or metered.
    pub usage_type: UsageType,
}

impl Recurring {
    /// A licensed price billed every `interval_count` `interval`s.
    pub fn licensed(interval: Interval, interval_count: u32) -> Self {
        Recurring {
            interval,
            interval_count,
            usage_type: UsageType::Licensed,
        }
    }

    /// The factor turning one billing period's amount into a monthly amount.
    fn monthly_factor(&self) -> Result<Ratio, MrrError> {
        let count = i128::from(self.interval_count);
        if count == 0 {
            return Err(MrrError::ZeroIntervalCount);
        }
        let (num, den) = match self.interval {
            Interval::Month => (1, count),
            Interval::Year => (1, 12 * count),
            Interval::Week => (52, 12 * count),
            Interval::Day => (365, 12 * count),
        };
        Ratio::new(num, den).ok_or(MrrError::Overflow)
    }
}

/// `tiers_mode` of a tiered price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TiersMode {
    /// The whole quantity is billed at the tier it reaches.
    Volume,
    /// Each tier bills the units that fall into it.
    Graduated,
}

/// One tier of a tiered price. Amounts are in minor units; use the
/// `*_decimal` field when Stripe sends one, and 0 for a missing amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tier {
    /// Last quantity (inclusive) in this tier; `None` is Stripe's `inf`.
    pub up_to: Option<u64>,
    /// Per-unit amount.
    pub unit_amount: Decimal,
    /// Flat amount for the tier.
    pub flat_amount: Decimal,
}

/// Rounding of `transform_quantity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuantityRounding {
    /// Round the divided quantity up.
    Up,
    /// Round the divided quantity down.
    Down,
}

/// A price's `transform_quantity`: bill per package of `divide_by` units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TransformQuantity {
    /// Package size (≥ 1).
    pub divide_by: u64,
    /// How a partial package is billed.
    pub round: QuantityRounding,
}

/// How a price turns a quantity into an amount (`billing_scheme`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "billing_scheme", rename_all = "snake_case")]
pub enum PricingScheme {
    /// `per_unit`.
    PerUnit {
        /// `unit_amount_decimal` when present, else `unit_amount`.
        unit_amount: Decimal,
        /// Package pricing, if any.
        #[serde(default)]
        transform_quantity: Option<TransformQuantity>,
    },
    /// `tiered`.
    Tiered {
        /// `tiers_mode`.
        mode: TiersMode,
        /// `tiers`, ascending by `up_to`, the last one `inf`.
        tiers: Vec<Tier>,
    },
}

/// The parts of a Stripe price that MRR depends on. Amounts are in the
/// subscription's currency (resolve `currency_options` before filling this).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PriceForMrr {
    /// Billing interval and usage type.
    pub recurring: Recurring,
    /// Amount for a quantity.
    pub scheme: PricingScheme,
}

impl PriceForMrr {
    /// A licensed per-unit price of `unit_amount` minor units per `interval_count` `interval`s.
    pub fn per_unit(unit_amount: u64, interval: Interval, interval_count: u32) -> Self {
        PriceForMrr {
            recurring: Recurring::licensed(interval, interval_count),
            scheme: PricingScheme::PerUnit {
                unit_amount: Decimal::from_integer(unit_amount),
                transform_quantity: None,
            },
        }
    }

    /// The amount for `quantity`, for one billing period.
    fn amount_per_period(&self, quantity: u64) -> Result<Ratio, MrrError> {
        match &self.scheme {
            PricingScheme::PerUnit {
                unit_amount,
                transform_quantity,
            } => {
                let billed = match transform_quantity {
                    None => quantity,
                    Some(TransformQuantity { divide_by: 0, .. }) => {
                        return Err(MrrError::ZeroDivideBy)
                    }
                    Some(TransformQuantity {
                        divide_by,
                        round: QuantityRounding::Up,
                    }) => quantity.div_ceil(*divide_by),
                    Some(TransformQuantity {
                        divide_by,
                        round: QuantityRounding::Down,
                    }) => quantity / divide_by,
                };
                times(*unit_amount, billed)
            }
            PricingScheme::Tiered { mode, tiers } => tiered_amount(*mode, tiers, quantity),
        }
    }
}

fn decimal(value: Decimal) -> Result<Ratio, MrrError> {
    Ratio::from_decimal(value).ok_or(MrrError::Overflow)
}

fn times(amount: Decimal, quantity: u64) -> Result<Ratio, MrrError> {
    decimal(amount)?
        .checked_mul(Ratio::integer(i128::from(quantity)))
        .ok_or(MrrError::Overflow)
}

fn add(a: Ratio, b: Ratio) -> Result<Ratio, MrrError> {
    a.checked_add(b).ok_or(MrrError::Overflow)
}

fn tiered_amount(mode: TiersMode, tiers: &[Tier], quantity: u64) -> Result<Ratio, MrrError> {
    validate_tiers(tiers)?;
    if quantity == 0 {
        return Ok(Ratio::ZERO);
    }
    match mode {
        TiersMode::Volume => {
            let tier = tiers
                .iter()
                .find(|tier| tier.up_to.is_none_or(|up_to| quantity <= up_to))
                .ok_or(MrrError::InvalidTiers(
                    "the quantity is above the last tier",
                ))?;
            add(
                times(tier.unit_amount, quantity)?,
                decimal(tier.flat_amount)?,
            )
        }
        TiersMode::Graduated => {
            let mut total = Ratio::ZERO;
            let mut below = 0u64;
            for tier in tiers {
                let top = tier.up_to.map_or(quantity, |up_to| up_to.min(quantity));
                let units = top.saturating_sub(below);
                if units > 0 {
                    total = add(total, times(tier.unit_amount, units)?)?;
                    total = add(total, decimal(tier.flat_amount)?)?;
                }
                if tier.up_to.is_none_or(|up_to| up_to >= quantity) {
                    return Ok(total);
                }
                below = top;
            }
            Err(MrrError::InvalidTiers(
                "the quantity is above the last tier",
            ))
        }
    }
}

fn validate_tiers(tiers: &[Tier]) -> Result<(), MrrError> {
    if tiers.is_empty() {
        return Err(MrrError::InvalidTiers("a tiered price has no tiers"));
    }
    let bounds: Vec<Option<u64>> = tiers.iter().map(|tier| tier.up_to).collect();
    let ascending = bounds.windows(2).all(|pair| match (pair[0], pair[1]) {
        (Some(a), Some(b)) => a < b,
        (Some(_), None) => true,
        (None, _) => false,
    });
    if ascending {
        Ok(())
    } else {
        Err(MrrError::InvalidTiers(
            "tiers must ascend by up_to with only the last one unbounded",
        ))
    }
}

/// A subscription item: a price and a quantity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ItemForMrr {
    /// The item's price.
    pub price: PriceForMrr,
    /// The item's quantity (0 for metered items, where Stripe has none).
    pub quantity: u64,
    /// Discounts attached to this item only (`subscription_item.discounts`).
    #[serde(default)]
    pub discounts: Vec<Discount>,
}

impl ItemForMrr {
    /// An item without item-level discounts.
    pub fn new(price: PriceForMrr, quantity: u64) -> Self {
        ItemForMrr {
            price,
            quantity,
            discounts: Vec::new(),
        }
    }
}

/// A percentage in `[0, 100]`, exact (Stripe's `percent_off`, e.g. `12.5`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PercentOff(Decimal);

/// A percentage above 100.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PercentOffError {
    /// Not a decimal number.
    #[error(transparent)]
    Decimal(#[from] crate::decimal::DecimalError),
    /// Above 100.
    #[error("percent_off {0} is above 100")]
    AboveHundred(Decimal),
}

impl PercentOff {
    /// `percent` if it is at most 100.
    pub fn new(percent: Decimal) -> Result<Self, PercentOffError> {
        if percent > Decimal::from_integer(100) {
            Err(PercentOffError::AboveHundred(percent))
        } else {
            Ok(PercentOff(percent))
        }
    }

    /// `basis_points` / 100 percent (1250 → 12.5 %).
    pub fn from_basis_points(basis_points: u16) -> Result<Self, PercentOffError> {
        let percent = Decimal::from_parts(i128::from(basis_points), 2).unwrap_or(Decimal::ZERO);
        Self::new(percent)
    }

    /// The percentage, e.g. `12.5`.
    pub fn percent(self) -> Decimal {
        self.0
    }
}

impl FromStr for PercentOff {
    type Err = PercentOffError;
    fn from_str(s: &str) -> Result<Self, PercentOffError> {
        Self::new(s.parse()?)
    }
}

impl Serialize for PercentOff {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for PercentOff {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::new(Decimal::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// What a coupon takes off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CouponValue {
    /// `percent_off`.
    PercentOff(PercentOff),
    /// `amount_off` with its `currency` (resolve `currency_options` to the
    /// subscription's currency first), taken off each invoice.
    AmountOff(Money),
}

/// A coupon's `duration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "duration", rename_all = "snake_case")]
pub enum CouponDuration {
    /// `once`: the first invoice only.
    Once,
    /// `repeating` for `duration_in_months`.
    Repeating {
        /// `duration_in_months`.
        months: u32,
    },
    /// `forever`.
    Forever,
}

/// The parts of a Stripe coupon that MRR depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Coupon {
    /// Percent or amount off.
    pub value: CouponValue,
    /// How long it applies.
    pub duration: CouponDuration,
}

/// A coupon applied to a subscription or item (Stripe's `discount` object).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Discount {
    /// The coupon.
    pub coupon: Coupon,
    /// When the discount stops applying (`discount.end`); `None` for `forever`.
    #[serde(default)]
    pub end: Option<DateTime<Utc>>,
}

impl Discount {
    /// A discount with no end.
    pub fn new(value: CouponValue, duration: CouponDuration) -> Self {
        Discount {
            coupon: Coupon { value, duration },
            end: None,
        }
    }

    fn applies(&self, policy: &MrrPolicy, as_of: DateTime<Utc>) -> bool {
        let unexpired = self.end.is_none_or(|end| end > as_of);
        let durable = matches!(self.coupon.duration, CouponDuration::Forever)
            || policy.subtract_temporary_discounts;
        unexpired && durable
    }
}

/// The parts of a Stripe subscription that MRR depends on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SubscriptionForMrr {
    /// `status`.
    pub status: SubscriptionStatus,
    /// `currency`; every amount of the subscription is in it.
    pub currency: Currency,
    /// `items`.
    pub items: Vec<ItemForMrr>,
    /// Subscription-level `discounts`, in Stripe's order.
    #[serde(default)]
    pub discounts: Vec<Discount>,
    /// `cancel_at_period_end`.
    #[serde(default)]
    pub cancel_at_period_end: bool,
    /// Whether `pause_collection` is set.
    #[serde(default)]
    pub pause_collection: bool,
}

/// How a subscription with `cancel_at_period_end = true` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelAtPeriodEnd {
    /// Counts 0 as soon as cancellation is requested (Stripe's default).
    #[default]
    StopAtRequest,
    /// Counts until the period ends and Stripe cancels it.
    CountUntilPeriodEnd,
}

/// The configurable MRR choices; [`Default`] follows Stripe's analytics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MrrPolicy {
    /// Statuses whose subscriptions count (default: `active`, `past_due`).
    pub counted_statuses: BTreeSet<SubscriptionStatus>,
    /// How `cancel_at_period_end` counts (default: stop at request).
    pub cancel_at_period_end: CancelAtPeriodEnd,
    /// Subtract `once` / `repeating` coupons while they apply (default: no).
    pub subtract_temporary_discounts: bool,
}

impl Default for MrrPolicy {
    fn default() -> Self {
        MrrPolicy {
            counted_statuses: [SubscriptionStatus::Active, SubscriptionStatus::PastDue]
                .into_iter()
                .collect(),
            cancel_at_period_end: CancelAtPeriodEnd::StopAtRequest,
            subtract_temporary_discounts: false,
        }
    }
}

impl MrrPolicy {
    /// Whether a subscription in this state counts at all.
    pub fn counts(&self, subscription: &SubscriptionForMrr) -> bool {
        self.counted_statuses.contains(&subscription.status)
            && !subscription.pause_collection
            && !(subscription.cancel_at_period_end
                && self.cancel_at_period_end == CancelAtPeriodEnd::StopAtRequest)
    }
}

/// Why MRR could not be computed. Each is a data problem to log, not a
/// reason to guess.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MrrError {
    /// A price has `interval_count = 0`.
    #[error("a price has interval_count 0")]
    ZeroIntervalCount,
    /// A price has `transform_quantity.divide_by = 0`.
    #[error("a price has transform_quantity.divide_by 0")]
    ZeroDivideBy,
    /// A tiered price's tiers are unusable.
    #[error("invalid tiers: {0}")]
    InvalidTiers(&'static str),
    /// An amount-off coupon is in another currency than the subscription.
    #[error("an amount-off coupon in {coupon} on a subscription in {subscription}")]
    CouponCurrency {
        /// The subscription's currency.
        subscription: Currency,
        /// The coupon's currency.
        coupon: Currency,
    },
    /// An intermediate or the result is too large.
    #[error("MRR arithmetic overflow")]
    Overflow,
}

/// A subscription's monthly recurring revenue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Mrr {
    /// The monthly amount, rounded to the minor unit; never negative.
    pub monthly: Money,
}

impl Mrr {
    /// No MRR in `currency`.
    pub const fn zero(currency: Currency) -> Self {
        Mrr {
            monthly: Money::zero(currency),
        }
    }

    /// Annual run rate: 12 × MRR.
    pub fn arr(&self) -> Result<Money, MoneyError> {
        self.monthly.checked_mul(12)
    }
}

/// The MRR of `subscription` under `policy`, as of `as_of` (which only decides
/// whether a discount with an `end` has expired). See the module docs for the
/// rules.
pub fn subscription_mrr(
    subscription: &SubscriptionForMrr,
    policy: &MrrPolicy,
    as_of: DateTime<Utc>,
) -> Result<Mrr, MrrError> {
    let currency = subscription.currency;
    if !policy.counts(subscription) {
        return Ok(Mrr::zero(currency));
    }
    let applicable = |discounts: &[Discount]| -> Vec<Discount> {
        discounts
            .iter()
            .filter(|discount| discount.applies(policy, as_of))
            .copied()
            .collect()
    };

    let mut monthly = Ratio::ZERO;
    let mut billing_factor: Option<Ratio> = None;
    for item in &subscription.items {
        let recurring = item.price.recurring;
        let factor = recurring.monthly_factor()?;
        // Shortest period = largest factor; independent of item order.
        billing_factor = Some(match billing_factor {
            Some(current) if !factor_greater(factor, current)? => current,
            _ => factor,
        });
        if recurring.usage_type == UsageType::Metered {
            continue;
        }
        let per_period = item.price.amount_per_period(item.quantity)?;
        let item_monthly = per_period.checked_mul(factor).ok_or(MrrError::Overflow)?;
        let item_monthly =
            apply_discounts(item_monthly, &applicable(&item.discounts), factor, currency)?;
        monthly = add(monthly, item_monthly)?;
    }
    let monthly = apply_discounts(
        monthly,
        &applicable(&subscription.discounts),
        billing_factor.unwrap_or(Ratio::integer(1)),
        currency,
    )?;

    let minor =
        i64::try_from(monthly.round_half_away_from_zero()).map_err(|_| MrrError::Overflow)?;
    Ok(Mrr {
        monthly: Money::new(minor, currency),
    })
}

fn factor_greater(a: Ratio, b: Ratio) -> Result<bool, MrrError> {
    let difference = a.checked_sub(b).ok_or(MrrError::Overflow)?;
    Ok(!difference.is_negative() && difference != Ratio::ZERO)
}

/// Applies `discounts` in order to a monthly `amount`, flooring at 0 after
/// each; `factor` normalises an amount-off (taken per billing period) to a month.
fn apply_discounts(
    mut amount: Ratio,
    discounts: &[Discount],
    factor: Ratio,
    currency: Currency,
) -> Result<Ratio, MrrError> {
    for discount in discounts {
        amount = match discount.coupon.value {
            CouponValue::PercentOff(percent) => {
                let hundred = Ratio::integer(100);
                let kept = hundred
                    .checked_sub(decimal(percent.percent())?)
                    .and_then(|kept| kept.checked_div(hundred))
                    .ok_or(MrrError::Overflow)?;
                amount.checked_mul(kept).ok_or(MrrError::Overflow)?
            }
            CouponValue::AmountOff(off) => {
                if off.currency != currency {
                    return Err(MrrError::CouponCurrency {
                        subscription: currency,
                        coupon: off.currency,
                    });
                }
                let monthly_off = Ratio::integer(i128::from(off.minor))
                    .checked_mul(factor)
                    .ok_or(MrrError::Overflow)?;
                amount.checked_sub(monthly_off).ok_or(MrrError::Overflow)?
            }
        };
        if amount.is_negative() {
            amount = Ratio::ZERO;
        }
    }
    Ok(amount)
}

/// Sums MRRs per currency; never adds across currencies.
pub fn total_mrr<'a, I>(mrrs: I) -> Result<MoneyByCurrency, MoneyError>
where
    I: IntoIterator<Item = &'a Mrr>,
{
    MoneyByCurrency::try_sum(mrrs.into_iter().map(|mrr| mrr.monthly))
}

/// ARR per currency from MRR per currency: 12 × each total.
pub fn arr_by_currency(mrr: &MoneyByCurrency) -> Result<MoneyByCurrency, MoneyError> {
    mrr.checked_mul(12)
}

#[cfg(test)]
mod tests;
