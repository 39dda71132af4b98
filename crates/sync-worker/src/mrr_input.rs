//! Stripe's subscription objects (async-stripe types) → [`domain::mrr`] inputs.
//!
//! Pure functions, no IO: the caller fetches the objects, this module reads
//! them, [`domain::mrr::subscription_mrr`] applies the MRR rules. Anything
//! the mapping cannot read exactly is a typed [`MrrInputError`] naming the
//! subscription and the object at fault; nothing is guessed or skipped.
//!
//! # What the caller fetches
//!
//! - Subscriptions with `expand[]=data.discounts&expand[]=data.items.data.discounts`
//!   (discounts are ids otherwise; an unexpanded one is
//!   [`MrrInputError::DiscountNotExpanded`], so the caller can refetch).
//! - Prices with `expand[]=data.tiers`, passed as a [`PriceLookup`]: Stripe
//!   leaves `tiers` out of a price unless expanded, the price embedded in a
//!   subscription item does not carry them, and expanding them there from the
//!   subscription list (`data.items.data.price.tiers`) is at or past Stripe's
//!   four-level expansion limit; so tiered prices are completed from the
//!   lookup by id.
//! - Coupons, when discounts carry their coupon as an id: since API version
//!   `2025-09-30.clover` a discount's coupon is `source.coupon` and is not
//!   auto-expanded. At subscription level `expand[]=data.discounts.source.coupon`
//!   embeds it; item-level ones (`data.items.data.discounts.source.coupon`)
//!   are past the four-level limit, so they are resolved through
//!   [`PriceLookup::coupon`] (see [`Catalog`]), e.g. from `/v1/coupons`.
//!
//! # Mapping
//!
//! | Stripe | domain |
//! | --- | --- |
//! | `subscription.status` | [`SubscriptionStatus`] (unknown value → error) |
//! | `subscription.currency` | [`Currency`] |
//! | `subscription.pause_collection` set | `pause_collection = true` |
//! | `subscription.cancel_at_period_end` | `cancel_at_period_end` |
//! | `subscription.discounts[]` (expanded) | subscription-level [`Discount`]s, in Stripe's order |
//! | `items.data[].discounts[]` (expanded) | item-level [`Discount`]s |
//! | `items.data[].quantity` | `quantity` (metered items: absent → 0) |
//! | `price.recurring.{interval, interval_count, usage_type}` | [`Recurring`] |
//! | `price.billing_scheme = per_unit`: `unit_amount_decimal`, else `unit_amount`; `transform_quantity` | [`PricingScheme::PerUnit`] |
//! | `price.billing_scheme = tiered`: `tiers_mode`, `tiers[].{up_to, unit_amount(_decimal), flat_amount(_decimal)}` | [`PricingScheme::Tiered`] |
//! | `price.currency_options[subscription currency]` when the price is in another currency | the amounts and tiers used |
//! | `discount.source.coupon.{percent_off, amount_off + currency (or currency_options), duration, duration_in_months}`, `discount.end` | [`Discount`] |
//!
//! # Decisions
//!
//! - **`discount` vs `discounts`.** Only `discounts` is read. The deprecated
//!   single `discount` is not part of the API version async-stripe 1.0.0-rc.10
//!   is generated for (its `Subscription` has no such field), and while both
//!   existed `discount` repeated one element of `discounts`, so reading both
//!   would count that discount twice. Payloads that still carry it (older API
//!   versions, the fake) have it ignored at deserialisation; a payload without
//!   `discounts` does not deserialise at all, so nothing is lost silently. A discount id appearing twice
//!   (in one list or at both levels) is [`MrrInputError::DuplicateDiscount`].
//! - **Metered prices** are mapped with [`UsageType::Metered`] and quantity 0
//!   when Stripe sends none; `domain::mrr` counts them 0. Their tiers are not
//!   needed for that, so a metered tiered price without tiers maps to an empty
//!   tier list (never evaluated) instead of failing.
//! - **Trials.** A trialing subscription keeps its items and prices; it is the
//!   status (`trialing`) that makes it count 0 under the policy. An item with
//!   its own trial (`current_trial`, trial offers) is
//!   [`MrrInputError::ItemTrial`]: the domain has no per-item trial and this
//!   mapping is not time-aware, so it refuses rather than guess.
//! - **Tiers** come from the item's price when present, else from the lookup;
//!   a missing amount in a tier is 0 (Stripe omits `flat_amount` when there
//!   is none). A licensed tiered price without tiers anywhere is
//!   [`MrrInputError::MissingTiers`].
//! - **Coupons restricted with `applies_to`** to products that only some of
//!   the items have are refused ([`MrrInputError::UnsupportedDiscount`]): the
//!   domain applies a subscription-level discount to the whole sum.
//! - A licensed item without `quantity`, an embedded item list with more
//!   pages (`items.has_more`), or a price in neither the subscription's
//!   currency nor its `currency_options` are errors, not defaults.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use domain::decimal::Decimal;
use domain::money::{Currency, Money};
use domain::mrr::{
    Coupon as DomainCoupon, CouponDuration, CouponValue, Discount, Interval, ItemForMrr,
    PercentOff, PriceForMrr, PricingScheme, QuantityRounding, Recurring, SubscriptionForMrr,
    SubscriptionStatus, Tier, TiersMode, TransformQuantity, UsageType,
};
use stripe_api::stripe_shared::{
    self, Coupon, CouponDuration as StripeCouponDuration, DiscountSourceType, Price,
    PriceBillingScheme, PriceTier, PriceTiersMode, RecurringInterval, RecurringUsageType,
    Subscription, SubscriptionItem, SubscriptionStatus as StripeStatus, TransformQuantityRound,
};
use stripe_api::stripe_types::Expandable;

/// Where the caller keeps the prices (fetched with `expand[]=data.tiers`) and,
/// optionally, the coupons that discounts refer to by id.
pub trait PriceLookup {
    /// The price with this id, if fetched.
    fn price(&self, id: &str) -> Option<&Price>;

    /// The coupon with this id, if fetched. Only consulted for a discount
    /// whose `source.coupon` is an id; by default nothing is known.
    fn coupon(&self, _id: &str) -> Option<&Coupon> {
        None
    }
}

impl PriceLookup for HashMap<String, Price> {
    fn price(&self, id: &str) -> Option<&Price> {
        self.get(id)
    }
}

/// Prices and coupons by id: the simplest [`PriceLookup`].
#[derive(Clone, Default)]
pub struct Catalog {
    /// Prices by id, fetched with `expand[]=data.tiers`.
    pub prices: HashMap<String, Price>,
    /// Coupons by id.
    pub coupons: HashMap<String, Coupon>,
}

impl Catalog {
    /// A catalog of these prices and coupons, keyed by their ids.
    pub fn new(
        prices: impl IntoIterator<Item = Price>,
        coupons: impl IntoIterator<Item = Coupon>,
    ) -> Self {
        Catalog {
            prices: prices
                .into_iter()
                .map(|p| (p.id.as_str().to_owned(), p))
                .collect(),
            coupons: coupons
                .into_iter()
                .map(|c| (c.id.as_str().to_owned(), c))
                .collect(),
        }
    }
}

impl PriceLookup for Catalog {
    fn price(&self, id: &str) -> Option<&Price> {
        self.prices.get(id)
    }

    fn coupon(&self, id: &str) -> Option<&Coupon> {
        self.coupons.get(id)
    }
}

/// Why a Stripe subscription could not be turned into a [`SubscriptionForMrr`].
/// Every variant names the subscription and the object at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MrrInputError {
    /// A `status` this code does not know.
    #[error("subscription {subscription}: unknown status {status:?}")]
    UnknownStatus {
        /// Subscription id.
        subscription: String,
        /// Stripe's value.
        status: String,
    },
    /// A currency code that is not three letters.
    #[error("subscription {subscription}: invalid currency {currency:?}")]
    InvalidCurrency {
        /// Subscription id.
        subscription: String,
        /// Stripe's value.
        currency: String,
    },
    /// The embedded `items` list has more pages; MRR needs every item.
    #[error(
        "subscription {subscription}: items list is truncated (has_more); \
         fetch /v1/subscription_items?subscription={subscription}"
    )]
    ItemsTruncated {
        /// Subscription id.
        subscription: String,
    },
    /// A licensed item without `quantity`.
    #[error("subscription {subscription}, item {item}: licensed item without quantity")]
    MissingQuantity {
        /// Subscription id.
        subscription: String,
        /// Subscription item id.
        item: String,
    },
    /// An item with its own trial (`current_trial`), which the domain cannot express.
    #[error("subscription {subscription}, item {item}: item-level trials are not supported")]
    ItemTrial {
        /// Subscription id.
        subscription: String,
        /// Subscription item id.
        item: String,
    },
    /// A price without `recurring` on a subscription item.
    #[error("subscription {subscription}, price {price}: price is not recurring")]
    NotRecurring {
        /// Subscription id.
        subscription: String,
        /// Price id.
        price: String,
    },
    /// A licensed tiered price whose tiers are neither embedded nor in the lookup.
    #[error(
        "subscription {subscription}, price {price}: tiered price without tiers \
         (fetch prices with expand[]=data.tiers)"
    )]
    MissingTiers {
        /// Subscription id.
        subscription: String,
        /// Price id.
        price: String,
    },
    /// A per-unit price with neither `unit_amount_decimal` nor `unit_amount`.
    #[error("subscription {subscription}, price {price}: per-unit price without unit amount")]
    MissingUnitAmount {
        /// Subscription id.
        subscription: String,
        /// Price id.
        price: String,
    },
    /// A price in another currency than the subscription, without a matching
    /// `currency_options` entry.
    #[error(
        "subscription {subscription}, price {price}: price in {price_currency} has no \
         currency_options for the subscription's {subscription_currency}"
    )]
    PriceCurrency {
        /// Subscription id.
        subscription: String,
        /// Price id.
        price: String,
        /// The price's currency.
        price_currency: String,
        /// The subscription's currency.
        subscription_currency: String,
    },
    /// A price value this mapping cannot represent exactly.
    #[error("subscription {subscription}, price {price}: {problem}")]
    UnsupportedPrice {
        /// Subscription id.
        subscription: String,
        /// Price id.
        price: String,
        /// What is wrong, with the field and value.
        problem: String,
    },
    /// A discount given as a bare id: refetch with `expand[]=data.discounts`
    /// (and `data.items.data.discounts` for item-level ones).
    #[error(
        "subscription {subscription}{}: discount {discount} is not expanded \
         (fetch with expand[]=data.discounts and expand[]=data.items.data.discounts)",
        item.as_ref().map(|i| format!(", item {i}")).unwrap_or_default()
    )]
    DiscountNotExpanded {
        /// Subscription id.
        subscription: String,
        /// Subscription item id, for an item-level discount.
        item: Option<String>,
        /// Discount id.
        discount: String,
    },
    /// A discount whose coupon is an id that the lookup does not have.
    #[error(
        "subscription {subscription}, discount {discount}: coupon {coupon} is neither \
         expanded (source.coupon) nor in the lookup"
    )]
    CouponNotExpanded {
        /// Subscription id.
        subscription: String,
        /// Discount id.
        discount: String,
        /// Coupon id.
        coupon: String,
    },
    /// The same discount id listed twice.
    #[error("subscription {subscription}: discount {discount} is listed twice")]
    DuplicateDiscount {
        /// Subscription id.
        subscription: String,
        /// Discount id.
        discount: String,
    },
    /// A discount or coupon this mapping cannot represent exactly.
    #[error("subscription {subscription}, discount {discount}: {problem}")]
    UnsupportedDiscount {
        /// Subscription id.
        subscription: String,
        /// Discount id.
        discount: String,
        /// What is wrong, naming the coupon, field and value.
        problem: String,
    },
}

/// The domain's MRR input for a Stripe subscription.
///
/// `prices` completes tiered prices (Stripe omits `tiers` unless expanded) and
/// resolves coupons given by id; see the module docs for the mapping and the
/// decisions behind it.
pub fn subscription_for_mrr(
    sub: &Subscription,
    prices: &impl PriceLookup,
) -> Result<SubscriptionForMrr, MrrInputError> {
    let sid = sub.id.as_str();
    let status = status(sub)?;
    let currency = currency(sid, &sub.currency.to_string())?;
    if sub.items.has_more {
        return Err(MrrInputError::ItemsTruncated {
            subscription: sid.to_owned(),
        });
    }

    let mut seen = HashSet::new();
    let products: Vec<&str> = sub
        .items
        .data
        .iter()
        .map(|item| item.price.product.id().as_str())
        .collect();
    let mut items = Vec::with_capacity(sub.items.data.len());
    for item in &sub.items.data {
        items.push(item_for_mrr(sid, item, currency, prices, &mut seen)?);
    }
    let discounts = sub
        .discounts
        .iter()
        .map(|d| {
            let discount = expanded(sid, None, d)?;
            check_unique(sid, &mut seen, discount)?;
            discount_for_mrr(sid, discount, currency, prices, &products)
        })
        .collect::<Result<_, _>>()?;

    Ok(SubscriptionForMrr {
        status,
        currency,
        items,
        discounts,
        cancel_at_period_end: sub.cancel_at_period_end,
        pause_collection: sub.pause_collection.is_some(),
    })
}

/// The domain's view of `price` as billed in `currency` for subscription `subscription`.
///
/// Tiers come from `price` when present, else from `prices` by the price's id.
pub fn price_for_mrr(
    subscription: &str,
    price: &Price,
    currency: Currency,
    prices: &impl PriceLookup,
) -> Result<PriceForMrr, MrrInputError> {
    let pid = price.id.as_str();
    let unsupported = |problem: String| MrrInputError::UnsupportedPrice {
        subscription: subscription.to_owned(),
        price: pid.to_owned(),
        problem,
    };
    let recurring = price
        .recurring
        .as_ref()
        .ok_or_else(|| MrrInputError::NotRecurring {
            subscription: subscription.to_owned(),
            price: pid.to_owned(),
        })?;
    let interval = match &recurring.interval {
        RecurringInterval::Day => Interval::Day,
        RecurringInterval::Week => Interval::Week,
        RecurringInterval::Month => Interval::Month,
        RecurringInterval::Year => Interval::Year,
        other => return Err(unsupported(format!("unknown recurring.interval {other}"))),
    };
    let usage_type = match &recurring.usage_type {
        RecurringUsageType::Licensed => UsageType::Licensed,
        RecurringUsageType::Metered => UsageType::Metered,
        other => return Err(unsupported(format!("unknown recurring.usage_type {other}"))),
    };
    let interval_count = u32::try_from(recurring.interval_count).map_err(|_| {
        unsupported(format!(
            "recurring.interval_count {} is out of range",
            recurring.interval_count
        ))
    })?;
    let recurring = Recurring {
        interval,
        interval_count,
        usage_type,
    };

    // The amounts in the subscription's currency: the price's own, or its
    // `currency_options` entry for that currency (from the lookup when the
    // embedded price lacks them).
    let looked_up = prices.price(pid);
    let in_currency = price.currency.to_string() == currency.as_str();
    let option = |p: &Price| {
        p.currency_options
            .as_ref()
            .and_then(|options| {
                options
                    .iter()
                    .find(|(c, _)| c.to_string() == currency.as_str())
            })
            .map(|(_, option)| option.clone())
    };
    let (unit_amount, unit_amount_decimal, tiers) = if in_currency {
        (
            price.unit_amount,
            price.unit_amount_decimal.clone(),
            price
                .tiers
                .clone()
                .or_else(|| looked_up.and_then(|p| p.tiers.clone())),
        )
    } else {
        let embedded = option(price);
        let fetched = looked_up.and_then(option);
        let Some(chosen) = embedded.clone().or_else(|| fetched.clone()) else {
            return Err(MrrInputError::PriceCurrency {
                subscription: subscription.to_owned(),
                price: pid.to_owned(),
                price_currency: price.currency.to_string(),
                subscription_currency: currency.to_string(),
            });
        };
        let tiers = embedded
            .and_then(|o| o.tiers)
            .or_else(|| fetched.and_then(|o| o.tiers));
        (chosen.unit_amount, chosen.unit_amount_decimal, tiers)
    };

    let scheme = match &price.billing_scheme {
        PriceBillingScheme::PerUnit => {
            let unit_amount = match (unit_amount_decimal, unit_amount) {
                (Some(decimal), _) => parse_decimal(&decimal).map_err(|problem| {
                    unsupported(format!("unit_amount_decimal {decimal:?}: {problem}"))
                })?,
                (None, Some(integer)) => non_negative(integer)
                    .map_err(|_| unsupported(format!("unit_amount {integer} is negative")))?,
                (None, None) => {
                    return Err(MrrInputError::MissingUnitAmount {
                        subscription: subscription.to_owned(),
                        price: pid.to_owned(),
                    })
                }
            };
            let transform_quantity = match &price.transform_quantity {
                None => None,
                Some(transform) => Some(TransformQuantity {
                    divide_by: u64::try_from(transform.divide_by).map_err(|_| {
                        unsupported(format!(
                            "transform_quantity.divide_by {} is negative",
                            transform.divide_by
                        ))
                    })?,
                    round: match &transform.round {
                        TransformQuantityRound::Up => QuantityRounding::Up,
                        TransformQuantityRound::Down => QuantityRounding::Down,
                        other => {
                            return Err(unsupported(format!(
                                "unknown transform_quantity.round {other}"
                            )))
                        }
                    },
                }),
            };
            PricingScheme::PerUnit {
                unit_amount,
                transform_quantity,
            }
        }
        PriceBillingScheme::Tiered => {
            if price.transform_quantity.is_some() {
                return Err(unsupported(
                    "tiered price with transform_quantity".to_owned(),
                ));
            }
            let mode = match &price.tiers_mode {
                Some(PriceTiersMode::Volume) => TiersMode::Volume,
                Some(PriceTiersMode::Graduated) => TiersMode::Graduated,
                Some(other) => return Err(unsupported(format!("unknown tiers_mode {other}"))),
                None => return Err(unsupported("tiered price without tiers_mode".to_owned())),
            };
            let tiers = match tiers {
                Some(tiers) => tiers
                    .iter()
                    .map(tier)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(unsupported)?,
                // Never evaluated: `domain::mrr` counts metered items 0.
                None if usage_type == UsageType::Metered => Vec::new(),
                None => {
                    return Err(MrrInputError::MissingTiers {
                        subscription: subscription.to_owned(),
                        price: pid.to_owned(),
                    })
                }
            };
            PricingScheme::Tiered { mode, tiers }
        }
        other => return Err(unsupported(format!("unknown billing_scheme {other}"))),
    };
    Ok(PriceForMrr { recurring, scheme })
}

/// The domain's view of an expanded Stripe discount on subscription
/// `subscription` billed in `currency`.
///
/// The coupon is `source.coupon`, embedded or resolved through `prices`.
/// `products` are the subscription items' product ids, to check that a coupon
/// restricted with `applies_to` covers all of them.
pub fn discount_for_mrr(
    subscription: &str,
    discount: &stripe_shared::Discount,
    currency: Currency,
    prices: &impl PriceLookup,
    products: &[&str],
) -> Result<Discount, MrrInputError> {
    let did = discount.id.as_str();
    let unsupported = |problem: String| MrrInputError::UnsupportedDiscount {
        subscription: subscription.to_owned(),
        discount: did.to_owned(),
        problem,
    };
    if discount.source.type_ != DiscountSourceType::Coupon {
        return Err(unsupported(format!(
            "unknown source.type {}",
            discount.source.type_
        )));
    }
    let coupon = match &discount.source.coupon {
        None => return Err(unsupported("source.coupon is missing".to_owned())),
        Some(Expandable::Object(coupon)) => coupon.as_ref(),
        Some(Expandable::Id(id)) => {
            prices
                .coupon(id.as_str())
                .ok_or_else(|| MrrInputError::CouponNotExpanded {
                    subscription: subscription.to_owned(),
                    discount: did.to_owned(),
                    coupon: id.as_str().to_owned(),
                })?
        }
    };
    let cid = coupon.id.as_str();

    if let Some(applies_to) = &coupon.applies_to {
        let restricted = !applies_to.products.is_empty()
            && !products
                .iter()
                .all(|product| applies_to.products.iter().any(|p| p == product));
        if restricted {
            return Err(unsupported(format!(
                "coupon {cid} applies_to only some of the items' products"
            )));
        }
    }

    let value = match (coupon.percent_off, coupon.amount_off) {
        (Some(percent), None) => {
            // Stripe sends a JSON number; Rust prints an f64 as the shortest
            // decimal that reads back as the same f64 (12.5 → "12.5"), which
            // is the number Stripe stored (at most two decimals).
            let text = percent.to_string();
            let percent = text
                .parse::<Decimal>()
                .map_err(|e| e.to_string())
                .and_then(|d| PercentOff::new(d).map_err(|e| e.to_string()))
                .map_err(|problem| {
                    unsupported(format!("coupon {cid}: percent_off {text}: {problem}"))
                })?;
            CouponValue::PercentOff(percent)
        }
        (None, Some(amount)) => {
            let coupon_currency = coupon
                .currency
                .as_ref()
                .ok_or_else(|| unsupported(format!("coupon {cid}: amount_off without currency")))?;
            let option = coupon.currency_options.as_ref().and_then(|options| {
                options
                    .iter()
                    .find(|(c, _)| c.to_string() == currency.as_str())
                    .map(|(_, option)| option.amount_off)
            });
            // In the subscription's currency when the coupon has it; otherwise
            // in its own, which `domain::mrr` rejects if it ever applies.
            let money = if coupon_currency.to_string() == currency.as_str() {
                Money::new(amount, currency)
            } else if let Some(amount) = option {
                Money::new(amount, currency)
            } else {
                let code = coupon_currency.to_string();
                let other = Currency::parse(&code)
                    .map_err(|_| unsupported(format!("coupon {cid}: invalid currency {code:?}")))?;
                Money::new(amount, other)
            };
            if money.is_negative() {
                return Err(unsupported(format!(
                    "coupon {cid}: amount_off {} is negative",
                    money.minor
                )));
            }
            CouponValue::AmountOff(money)
        }
        (Some(_), Some(_)) => {
            return Err(unsupported(format!(
                "coupon {cid} has both percent_off and amount_off"
            )))
        }
        (None, None) => {
            return Err(unsupported(format!(
                "coupon {cid} has neither percent_off nor amount_off"
            )))
        }
    };
    let duration = match &coupon.duration {
        StripeCouponDuration::Forever => CouponDuration::Forever,
        StripeCouponDuration::Once => CouponDuration::Once,
        StripeCouponDuration::Repeating => {
            let months = coupon
                .duration_in_months
                .and_then(|m| u32::try_from(m).ok())
                .ok_or_else(|| {
                    unsupported(format!(
                        "coupon {cid}: repeating without a valid duration_in_months ({:?})",
                        coupon.duration_in_months
                    ))
                })?;
            CouponDuration::Repeating { months }
        }
        other => {
            return Err(unsupported(format!(
                "coupon {cid}: unknown duration {other}"
            )))
        }
    };
    let end = discount
        .end
        .map(|end| {
            DateTime::<Utc>::from_timestamp(end, 0)
                .ok_or_else(|| unsupported(format!("end {end} is not a valid timestamp")))
        })
        .transpose()?;
    Ok(Discount {
        coupon: DomainCoupon { value, duration },
        end,
    })
}

fn status(sub: &Subscription) -> Result<SubscriptionStatus, MrrInputError> {
    Ok(match &sub.status {
        StripeStatus::Active => SubscriptionStatus::Active,
        StripeStatus::Canceled => SubscriptionStatus::Canceled,
        StripeStatus::Incomplete => SubscriptionStatus::Incomplete,
        StripeStatus::IncompleteExpired => SubscriptionStatus::IncompleteExpired,
        StripeStatus::PastDue => SubscriptionStatus::PastDue,
        StripeStatus::Paused => SubscriptionStatus::Paused,
        StripeStatus::Trialing => SubscriptionStatus::Trialing,
        StripeStatus::Unpaid => SubscriptionStatus::Unpaid,
        other => {
            return Err(MrrInputError::UnknownStatus {
                subscription: sub.id.as_str().to_owned(),
                status: other.to_string(),
            })
        }
    })
}

fn currency(subscription: &str, code: &str) -> Result<Currency, MrrInputError> {
    Currency::parse(code).map_err(|_| MrrInputError::InvalidCurrency {
        subscription: subscription.to_owned(),
        currency: code.to_owned(),
    })
}

fn item_for_mrr(
    subscription: &str,
    item: &SubscriptionItem,
    currency: Currency,
    prices: &impl PriceLookup,
    seen: &mut HashSet<String>,
) -> Result<ItemForMrr, MrrInputError> {
    let iid = item.id.as_str();
    if item.current_trial.is_some() {
        return Err(MrrInputError::ItemTrial {
            subscription: subscription.to_owned(),
            item: iid.to_owned(),
        });
    }
    let price = price_for_mrr(subscription, &item.price, currency, prices)?;
    let quantity = match (item.quantity, price.recurring.usage_type) {
        (Some(quantity), _) => quantity,
        (None, UsageType::Metered) => 0,
        (None, UsageType::Licensed) => {
            return Err(MrrInputError::MissingQuantity {
                subscription: subscription.to_owned(),
                item: iid.to_owned(),
            })
        }
    };
    let product = [item.price.product.id().as_str()];
    let discounts = item
        .discounts
        .iter()
        .map(|d| {
            let discount = expanded(subscription, Some(iid), d)?;
            check_unique(subscription, seen, discount)?;
            discount_for_mrr(subscription, discount, currency, prices, &product)
        })
        .collect::<Result<_, _>>()?;
    Ok(ItemForMrr {
        price,
        quantity,
        discounts,
    })
}

fn expanded<'a>(
    subscription: &str,
    item: Option<&str>,
    discount: &'a Expandable<stripe_shared::Discount>,
) -> Result<&'a stripe_shared::Discount, MrrInputError> {
    discount
        .as_object()
        .ok_or_else(|| MrrInputError::DiscountNotExpanded {
            subscription: subscription.to_owned(),
            item: item.map(str::to_owned),
            discount: discount.id().as_str().to_owned(),
        })
}

fn check_unique(
    subscription: &str,
    seen: &mut HashSet<String>,
    discount: &stripe_shared::Discount,
) -> Result<(), MrrInputError> {
    if seen.insert(discount.id.as_str().to_owned()) {
        Ok(())
    } else {
        Err(MrrInputError::DuplicateDiscount {
            subscription: subscription.to_owned(),
            discount: discount.id.as_str().to_owned(),
        })
    }
}

fn non_negative(amount: i64) -> Result<Decimal, ()> {
    u64::try_from(amount)
        .map(Decimal::from_integer)
        .map_err(|_| ())
}

fn parse_decimal(text: &str) -> Result<Decimal, String> {
    text.parse::<Decimal>().map_err(|e| e.to_string())
}

/// One tier: the `*_decimal` amounts when present, else the integer ones, else 0.
fn tier(tier: &PriceTier) -> Result<Tier, String> {
    let amount =
        |decimal: &Option<String>, integer: Option<i64>, field: &str| match (decimal, integer) {
            (Some(decimal), _) => {
                parse_decimal(decimal).map_err(|e| format!("tier {field}_decimal {decimal:?}: {e}"))
            }
            (None, Some(integer)) => {
                non_negative(integer).map_err(|_| format!("tier {field} {integer} is negative"))
            }
            (None, None) => Ok(Decimal::ZERO),
        };
    let up_to = tier
        .up_to
        .map(|up_to| u64::try_from(up_to).map_err(|_| format!("tier up_to {up_to} is negative")))
        .transpose()?;
    Ok(Tier {
        up_to,
        unit_amount: amount(&tier.unit_amount_decimal, tier.unit_amount, "unit_amount")?,
        flat_amount: amount(&tier.flat_amount_decimal, tier.flat_amount, "flat_amount")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::mrr::{subscription_mrr, MrrPolicy};
    use serde_json::{json, Value};

    const SUB: &str = "sub_1";

    /// Shallow merge: `extra`'s keys replace `base`'s (`null` included).
    fn with(mut base: Value, extra: Value) -> Value {
        if let (Value::Object(b), Value::Object(e)) = (&mut base, extra) {
            b.extend(e);
        }
        base
    }

    /// A licensed per-unit usd price of 1000 a month; `extra` overrides fields.
    fn price(id: &str, extra: Value) -> Value {
        with(
            json!({
                "id": id, "object": "price", "active": true, "billing_scheme": "per_unit",
                "created": 1, "currency": "usd", "livemode": false, "metadata": {},
                "product": "prod_1", "type": "recurring",
                "recurring": {"interval": "month", "interval_count": 1, "usage_type": "licensed"},
                "unit_amount": 1000, "unit_amount_decimal": "1000"
            }),
            extra,
        )
    }

    fn tiered(id: &str, mode: &str, tiers: Option<Value>) -> Value {
        let mut p = price(
            id,
            json!({"billing_scheme": "tiered", "tiers_mode": mode,
                   "unit_amount": null, "unit_amount_decimal": null}),
        );
        if let Some(tiers) = tiers {
            p["tiers"] = tiers;
        }
        p
    }

    fn three_tiers() -> Value {
        json!([
            {"up_to": 10, "unit_amount": 1000, "unit_amount_decimal": "1000",
             "flat_amount": null, "flat_amount_decimal": null},
            {"up_to": 50, "unit_amount": 800, "unit_amount_decimal": "800",
             "flat_amount": 500, "flat_amount_decimal": "500"},
            {"up_to": null, "unit_amount_decimal": "600.5", "flat_amount": 0}
        ])
    }

    fn item(id: &str, price: Value, quantity: Option<u64>) -> Value {
        let plan = json!({
            "id": price["id"], "object": "plan", "active": true, "billing_scheme": "per_unit",
            "created": 1, "currency": "usd", "interval": "month", "interval_count": 1,
            "livemode": false, "product": "prod_1", "usage_type": "licensed"
        });
        let mut v = json!({
            "id": id, "object": "subscription_item", "created": 1,
            "current_period_start": 1, "current_period_end": 2, "discounts": [],
            "metadata": {}, "plan": plan, "price": price, "subscription": SUB
        });
        if let Some(q) = quantity {
            v["quantity"] = q.into();
        }
        v
    }

    fn sub(items: Vec<Value>, extra: Value) -> Value {
        with(
            json!({
                "id": SUB, "object": "subscription",
                "automatic_tax": {"enabled": false},
                "billing_cycle_anchor": 1, "billing_mode": {"type": "classic"},
                "billing_schedules": [], "cancel_at_period_end": false,
                "collection_method": "charge_automatically", "created": 1,
                "currency": "usd", "customer": "cus_1", "discounts": [],
                "invoice_settings": {"issuer": {"type": "self"}},
                "items": {"object": "list", "data": items, "has_more": false,
                          "url": "/v1/subscription_items?subscription=sub_1"},
                "livemode": false, "metadata": {}, "start_date": 1, "status": "active"
            }),
            extra,
        )
    }

    fn coupon(id: &str, extra: Value) -> Value {
        with(
            json!({
                "id": id, "object": "coupon", "created": 1, "duration": "forever",
                "livemode": false, "times_redeemed": 0, "valid": true
            }),
            extra,
        )
    }

    /// An expanded discount in the current shape (`source.coupon`).
    fn discount(id: &str, coupon: Value, end: Option<i64>) -> Value {
        json!({
            "id": id, "object": "discount", "customer": "cus_1", "start": 1,
            "end": end, "subscription": SUB,
            "source": {"type": "coupon", "coupon": coupon}
        })
    }

    fn parse_sub(v: Value) -> Subscription {
        serde_json::from_value(v).expect("fixture reads as a Subscription")
    }

    fn parse_price(v: Value) -> Price {
        serde_json::from_value(v).expect("fixture reads as a Price")
    }

    fn map(v: Value) -> Result<SubscriptionForMrr, MrrInputError> {
        subscription_for_mrr(&parse_sub(v), &HashMap::<String, Price>::new())
    }

    fn map_with(v: Value, lookup: &impl PriceLookup) -> Result<SubscriptionForMrr, MrrInputError> {
        subscription_for_mrr(&parse_sub(v), lookup)
    }

    fn one_item(price_extra: Value, quantity: Option<u64>) -> Value {
        sub(
            vec![item("si_1", price("price_1", price_extra), quantity)],
            json!({}),
        )
    }

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn mrr(input: &SubscriptionForMrr) -> i64 {
        subscription_mrr(input, &MrrPolicy::default(), Utc::now())
            .unwrap()
            .monthly
            .minor
    }

    #[test]
    fn maps_every_status_and_rejects_unknown_ones() {
        for (stripe, ours) in [
            ("active", SubscriptionStatus::Active),
            ("past_due", SubscriptionStatus::PastDue),
            ("trialing", SubscriptionStatus::Trialing),
            ("incomplete", SubscriptionStatus::Incomplete),
            ("incomplete_expired", SubscriptionStatus::IncompleteExpired),
            ("unpaid", SubscriptionStatus::Unpaid),
            ("canceled", SubscriptionStatus::Canceled),
            ("paused", SubscriptionStatus::Paused),
        ] {
            let input = map(sub(
                vec![item("si_1", price("price_1", json!({})), Some(1))],
                json!({"status": stripe}),
            ))
            .unwrap();
            assert_eq!(input.status, ours, "{stripe}");
        }
        let err = map(sub(vec![], json!({"status": "frozen"}))).unwrap_err();
        assert_eq!(
            err,
            MrrInputError::UnknownStatus {
                subscription: SUB.into(),
                status: "frozen".into()
            }
        );
    }

    #[test]
    fn trialing_subscription_keeps_its_items_and_counts_zero_by_status() {
        let input = map(sub(
            vec![item("si_1", price("price_1", json!({})), Some(3))],
            json!({"status": "trialing", "trial_start": 1, "trial_end": 4_000_000_000i64}),
        ))
        .unwrap();
        assert_eq!(input.items.len(), 1);
        assert_eq!(mrr(&input), 0);
    }

    #[test]
    fn maps_currency_quantity_pause_and_cancel_at_period_end() {
        let plain = map(one_item(json!({}), Some(3))).unwrap();
        assert_eq!(plain.currency, Currency::USD);
        assert_eq!(plain.items[0].quantity, 3);
        assert!(!plain.pause_collection);
        assert!(!plain.cancel_at_period_end);
        assert_eq!(mrr(&plain), 3000);

        let jpy = map(sub(
            vec![item(
                "si_1",
                price("price_1", json!({"currency": "jpy"})),
                Some(1),
            )],
            json!({"currency": "jpy"}),
        ))
        .unwrap();
        assert_eq!(jpy.currency, Currency::JPY);

        let paused = map(sub(
            vec![item("si_1", price("price_1", json!({})), Some(1))],
            json!({"pause_collection": {"behavior": "void", "resumes_at": null}}),
        ))
        .unwrap();
        assert!(paused.pause_collection);
        assert_eq!(mrr(&paused), 0);

        let cape = map(sub(
            vec![item("si_1", price("price_1", json!({})), Some(1))],
            json!({"cancel_at_period_end": true, "cancel_at": 2}),
        ))
        .unwrap();
        assert!(cape.cancel_at_period_end);
    }

    #[test]
    fn maps_interval_and_interval_count() {
        for (interval, count, ours) in [
            ("day", 1, Interval::Day),
            ("week", 2, Interval::Week),
            ("month", 3, Interval::Month),
            ("year", 1, Interval::Year),
        ] {
            let input = map(one_item(
                json!({"recurring": {"interval": interval, "interval_count": count,
                                     "usage_type": "licensed"}}),
                Some(1),
            ))
            .unwrap();
            assert_eq!(
                input.items[0].price.recurring,
                Recurring::licensed(ours, count),
                "{interval}"
            );
        }
        let err = map(one_item(
            json!({"recurring": {"interval": "fortnight", "interval_count": 1,
                                 "usage_type": "licensed"}}),
            Some(1),
        ))
        .unwrap_err();
        assert!(
            matches!(&err, MrrInputError::UnsupportedPrice { price, problem, .. }
                if price == "price_1" && problem.contains("fortnight")),
            "{err}"
        );
    }

    #[test]
    fn per_unit_prefers_unit_amount_decimal_then_unit_amount() {
        let decimal = map(one_item(
            json!({"unit_amount": 0, "unit_amount_decimal": "0.125"}),
            Some(8),
        ))
        .unwrap();
        assert_eq!(
            decimal.items[0].price.scheme,
            PricingScheme::PerUnit {
                unit_amount: d("0.125"),
                transform_quantity: None
            }
        );
        assert_eq!(mrr(&decimal), 1);

        let integer = map(one_item(json!({"unit_amount_decimal": null}), Some(1))).unwrap();
        assert_eq!(
            integer.items[0].price.scheme,
            PricingScheme::PerUnit {
                unit_amount: d("1000"),
                transform_quantity: None
            }
        );

        let missing = map(one_item(
            json!({"unit_amount": null, "unit_amount_decimal": null}),
            Some(1),
        ))
        .unwrap_err();
        assert_eq!(
            missing,
            MrrInputError::MissingUnitAmount {
                subscription: SUB.into(),
                price: "price_1".into()
            }
        );

        let negative = map(one_item(
            json!({"unit_amount": -5, "unit_amount_decimal": null}),
            Some(1),
        ))
        .unwrap_err();
        assert!(matches!(negative, MrrInputError::UnsupportedPrice { .. }));
    }

    #[test]
    fn maps_transform_quantity() {
        for (round, ours, expected) in [
            ("up", QuantityRounding::Up, 3000),
            ("down", QuantityRounding::Down, 2000),
        ] {
            let input = map(one_item(
                json!({"transform_quantity": {"divide_by": 10, "round": round}}),
                Some(25),
            ))
            .unwrap();
            assert_eq!(
                input.items[0].price.scheme,
                PricingScheme::PerUnit {
                    unit_amount: d("1000"),
                    transform_quantity: Some(TransformQuantity {
                        divide_by: 10,
                        round: ours
                    }),
                }
            );
            assert_eq!(mrr(&input), expected, "{round}");
        }
    }

    #[test]
    fn maps_embedded_volume_and_graduated_tiers() {
        for (mode, ours, expected) in [
            // 12 seats in the second tier: 12 × 800 + 500.
            ("volume", TiersMode::Volume, 10_100),
            // 10 × 1000 + 2 × 800 + 500.
            ("graduated", TiersMode::Graduated, 12_100),
        ] {
            let input = map(sub(
                vec![item(
                    "si_1",
                    tiered("price_t", mode, Some(three_tiers())),
                    Some(12),
                )],
                json!({}),
            ))
            .unwrap();
            assert_eq!(
                input.items[0].price.scheme,
                PricingScheme::Tiered {
                    mode: ours,
                    tiers: vec![
                        Tier {
                            up_to: Some(10),
                            unit_amount: d("1000"),
                            flat_amount: Decimal::ZERO
                        },
                        Tier {
                            up_to: Some(50),
                            unit_amount: d("800"),
                            flat_amount: d("500")
                        },
                        Tier {
                            up_to: None,
                            unit_amount: d("600.5"),
                            flat_amount: Decimal::ZERO
                        },
                    ],
                },
                "{mode}"
            );
            assert_eq!(mrr(&input), expected, "{mode}");
        }
    }

    #[test]
    fn tiers_missing_from_the_item_come_from_the_lookup() {
        let subscription = sub(
            vec![item("si_1", tiered("price_t", "graduated", None), Some(12))],
            json!({}),
        );
        let err = map(subscription.clone()).unwrap_err();
        assert_eq!(
            err,
            MrrInputError::MissingTiers {
                subscription: SUB.into(),
                price: "price_t".into()
            }
        );
        assert!(err.to_string().contains("expand[]=data.tiers"), "{err}");

        let lookup: HashMap<String, Price> = [(
            "price_t".to_owned(),
            parse_price(tiered("price_t", "graduated", Some(three_tiers()))),
        )]
        .into();
        let input = map_with(subscription, &lookup).unwrap();
        assert_eq!(mrr(&input), 12_100);
    }

    #[test]
    fn tiered_price_with_transform_quantity_or_without_mode_is_refused() {
        let mut p = tiered("price_t", "volume", Some(three_tiers()));
        p["transform_quantity"] = json!({"divide_by": 2, "round": "up"});
        let err = map(sub(vec![item("si_1", p, Some(1))], json!({}))).unwrap_err();
        assert!(
            matches!(err, MrrInputError::UnsupportedPrice { .. }),
            "{err}"
        );

        let mut p = tiered("price_t", "volume", Some(three_tiers()));
        p["tiers_mode"] = Value::Null;
        let err = map(sub(vec![item("si_1", p, Some(1))], json!({}))).unwrap_err();
        assert!(
            matches!(err, MrrInputError::UnsupportedPrice { .. }),
            "{err}"
        );
    }

    #[test]
    fn metered_items_map_as_metered_with_quantity_zero_and_count_zero() {
        let metered = json!({"recurring": {"interval": "month", "interval_count": 1,
                                           "usage_type": "metered"},
                             "unit_amount": 2, "unit_amount_decimal": "2"});
        let input = map(sub(
            vec![
                item("si_1", price("price_1", json!({})), Some(1)),
                item("si_2", price("price_m", metered), None),
            ],
            json!({}),
        ))
        .unwrap();
        assert_eq!(
            input.items[1].price.recurring.usage_type,
            UsageType::Metered
        );
        assert_eq!(input.items[1].quantity, 0);
        assert_eq!(mrr(&input), 1000);

        // A metered tiered price needs no tiers: they never affect MRR.
        let mut graduated = tiered("price_mt", "graduated", None);
        graduated["recurring"]["usage_type"] = "metered".into();
        let input = map(sub(vec![item("si_1", graduated, None)], json!({}))).unwrap();
        assert_eq!(mrr(&input), 0);
    }

    #[test]
    fn licensed_item_without_quantity_is_an_error() {
        assert_eq!(
            map(one_item(json!({}), None)).unwrap_err(),
            MrrInputError::MissingQuantity {
                subscription: SUB.into(),
                item: "si_1".into()
            }
        );
    }

    #[test]
    fn one_time_price_and_unknown_billing_scheme_are_errors() {
        let err = map(one_item(
            json!({"recurring": null, "type": "one_time"}),
            Some(1),
        ))
        .unwrap_err();
        assert!(matches!(err, MrrInputError::NotRecurring { .. }), "{err}");
        let err = map(one_item(json!({"billing_scheme": "banded"}), Some(1))).unwrap_err();
        assert!(
            matches!(err, MrrInputError::UnsupportedPrice { .. }),
            "{err}"
        );
    }

    #[test]
    fn price_in_another_currency_uses_its_currency_options() {
        let eur_price = json!({"currency": "usd", "currency_options": {
            "eur": {"unit_amount": 900, "unit_amount_decimal": "900", "tax_behavior": "unspecified"}
        }});
        let input = map(sub(
            vec![item("si_1", price("price_1", eur_price), Some(2))],
            json!({"currency": "eur"}),
        ))
        .unwrap();
        assert_eq!(input.currency, Currency::EUR);
        assert_eq!(mrr(&input), 1800);

        let err = map(sub(
            vec![item("si_1", price("price_1", json!({})), Some(1))],
            json!({"currency": "gbp"}),
        ))
        .unwrap_err();
        assert_eq!(
            err,
            MrrInputError::PriceCurrency {
                subscription: SUB.into(),
                price: "price_1".into(),
                price_currency: "usd".into(),
                subscription_currency: "gbp".into()
            }
        );
    }

    #[test]
    fn items_list_with_more_pages_is_an_error() {
        let mut v = one_item(json!({}), Some(1));
        v["items"]["has_more"] = true.into();
        assert_eq!(
            map(v).unwrap_err(),
            MrrInputError::ItemsTruncated {
                subscription: SUB.into()
            }
        );
    }

    #[test]
    fn item_with_its_own_trial_is_refused() {
        let mut i = item("si_1", price("price_1", json!({})), Some(1));
        i["current_trial"] = json!({"start_date": 1, "end_date": 2, "trial_offer": "to_1"});
        assert_eq!(
            map(sub(vec![i], json!({}))).unwrap_err(),
            MrrInputError::ItemTrial {
                subscription: SUB.into(),
                item: "si_1".into()
            }
        );
    }

    #[test]
    fn maps_percent_and_amount_coupons_with_duration_and_end() {
        let discounts = json!([
            discount("di_1", coupon("PCT", json!({"percent_off": 12.5})), None),
            discount(
                "di_2",
                coupon(
                    "AMT",
                    json!({"amount_off": 500, "currency": "usd",
                                     "duration": "repeating", "duration_in_months": 3})
                ),
                Some(1_800_000_000),
            ),
            discount(
                "di_3",
                coupon("ONCE", json!({"percent_off": 50.0, "duration": "once"})),
                None
            ),
        ]);
        let input = map(sub(
            vec![item("si_1", price("price_1", json!({})), Some(1))],
            json!({"discounts": discounts}),
        ))
        .unwrap();
        assert_eq!(
            input.discounts,
            vec![
                Discount::new(
                    CouponValue::PercentOff(PercentOff::new(d("12.5")).unwrap()),
                    CouponDuration::Forever
                ),
                Discount {
                    coupon: DomainCoupon {
                        value: CouponValue::AmountOff(Money::new(500, Currency::USD)),
                        duration: CouponDuration::Repeating { months: 3 },
                    },
                    end: DateTime::from_timestamp(1_800_000_000, 0),
                },
                Discount::new(
                    CouponValue::PercentOff(PercentOff::new(d("50")).unwrap()),
                    CouponDuration::Once
                ),
            ]
        );
        // Only the forever coupon reduces MRR under the default policy.
        assert_eq!(mrr(&input), 875);
    }

    #[test]
    fn amount_off_in_another_currency_uses_coupon_currency_options() {
        let c = coupon(
            "AMT",
            json!({"amount_off": 500, "currency": "usd",
                   "currency_options": {"eur": {"amount_off": 450}}}),
        );
        let input = map(sub(
            vec![item(
                "si_1",
                price("price_1", json!({"currency": "eur"})),
                Some(1),
            )],
            json!({"currency": "eur", "discounts": [discount("di_1", c, None)]}),
        ))
        .unwrap();
        assert_eq!(
            input.discounts[0].coupon.value,
            CouponValue::AmountOff(Money::new(450, Currency::EUR))
        );
        assert_eq!(mrr(&input), 550);
    }

    #[test]
    fn malformed_coupons_are_errors_naming_discount_and_coupon() {
        for bad in [
            json!({}),
            json!({"percent_off": 10.0, "amount_off": 100, "currency": "usd"}),
            json!({"percent_off": 120.0}),
            json!({"amount_off": 100}),
            json!({"percent_off": 10.0, "duration": "repeating"}),
            json!({"percent_off": 10.0, "duration": "sometimes"}),
        ] {
            let err = map(sub(
                vec![item("si_1", price("price_1", json!({})), Some(1))],
                json!({"discounts": [discount("di_1", coupon("BAD", bad.clone()), None)]}),
            ))
            .unwrap_err();
            assert!(
                matches!(&err, MrrInputError::UnsupportedDiscount { discount, problem, .. }
                    if discount == "di_1" && problem.contains("BAD")),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn item_discounts_go_to_their_item_and_subscription_discounts_to_the_sum() {
        let mut i1 = item("si_1", price("price_1", json!({})), Some(1));
        i1["discounts"] = json!([discount(
            "di_item",
            coupon("HALF", json!({"percent_off": 50})),
            None
        )]);
        let i2 = item(
            "si_2",
            price("price_2", json!({"unit_amount_decimal": "2000"})),
            Some(1),
        );
        let input = map(sub(
            vec![i1, i2],
            json!({"discounts": [discount("di_sub",
                coupon("TENOFF", json!({"amount_off": 100, "currency": "usd"})), None)]}),
        ))
        .unwrap();
        assert_eq!(input.items[0].discounts.len(), 1);
        assert!(input.items[1].discounts.is_empty());
        assert_eq!(input.discounts.len(), 1);
        // (1000 × 50 % + 2000) − 100.
        assert_eq!(mrr(&input), 2400);
    }

    #[test]
    fn unexpanded_discount_is_an_error_naming_it() {
        let err = map(sub(
            vec![item("si_1", price("price_1", json!({})), Some(1))],
            json!({"discounts": ["di_123"]}),
        ))
        .unwrap_err();
        assert_eq!(
            err,
            MrrInputError::DiscountNotExpanded {
                subscription: SUB.into(),
                item: None,
                discount: "di_123".into()
            }
        );
        assert!(err.to_string().contains("expand[]=data.discounts"), "{err}");

        let mut i = item("si_1", price("price_1", json!({})), Some(1));
        i["discounts"] = json!(["di_456"]);
        let err = map(sub(vec![i], json!({}))).unwrap_err();
        assert_eq!(
            err,
            MrrInputError::DiscountNotExpanded {
                subscription: SUB.into(),
                item: Some("si_1".into()),
                discount: "di_456".into()
            }
        );
        assert!(err.to_string().contains("item si_1"), "{err}");
    }

    #[test]
    fn coupon_given_by_id_is_resolved_through_the_lookup() {
        let v = sub(
            vec![item("si_1", price("price_1", json!({})), Some(1))],
            json!({"discounts": [discount("di_1", json!("QUARTER"), None)]}),
        );
        assert_eq!(
            map(v.clone()).unwrap_err(),
            MrrInputError::CouponNotExpanded {
                subscription: SUB.into(),
                discount: "di_1".into(),
                coupon: "QUARTER".into()
            }
        );
        let catalog = Catalog::new(
            [],
            [
                serde_json::from_value::<Coupon>(coupon("QUARTER", json!({"percent_off": 25})))
                    .unwrap(),
            ],
        );
        let input = map_with(v, &catalog).unwrap();
        assert_eq!(mrr(&input), 750);
    }

    #[test]
    fn deprecated_single_discount_is_not_counted_twice() {
        // Older API versions (and the fake) render `discount` next to
        // `discounts`, holding the same discount (with a top-level `coupon`).
        let forever = coupon("PCT", json!({"percent_off": 10}));
        let legacy = json!({"id": "di_1", "object": "discount", "coupon": forever.clone(),
                            "start": 1, "end": null, "subscription": SUB});
        let input = map(sub(
            vec![item("si_1", price("price_1", json!({})), Some(1))],
            json!({"discount": legacy, "discounts": [discount("di_1", forever, None)]}),
        ))
        .unwrap();
        assert_eq!(input.discounts.len(), 1);
        assert_eq!(mrr(&input), 900);
    }

    #[test]
    fn the_same_discount_twice_is_an_error() {
        let c = coupon("PCT", json!({"percent_off": 10}));
        let mut i = item("si_1", price("price_1", json!({})), Some(1));
        i["discounts"] = json!([discount("di_1", c.clone(), None)]);
        let err = map(sub(
            vec![i],
            json!({"discounts": [discount("di_1", c, None)]}),
        ))
        .unwrap_err();
        assert_eq!(
            err,
            MrrInputError::DuplicateDiscount {
                subscription: SUB.into(),
                discount: "di_1".into()
            }
        );
    }

    #[test]
    fn coupon_restricted_to_some_items_products_is_refused() {
        let restricted = coupon(
            "PROD",
            json!({"percent_off": 10, "applies_to": {"products": ["prod_1"]}}),
        );
        let other = price("price_2", json!({"product": "prod_2"}));
        let err = map(sub(
            vec![
                item("si_1", price("price_1", json!({})), Some(1)),
                item("si_2", other, Some(1)),
            ],
            json!({"discounts": [discount("di_1", restricted.clone(), None)]}),
        ))
        .unwrap_err();
        assert!(
            matches!(&err, MrrInputError::UnsupportedDiscount { problem, .. }
                if problem.contains("applies_to")),
            "{err}"
        );
        // Covering every item's product, it is an ordinary discount.
        let input = map(sub(
            vec![item("si_1", price("price_1", json!({})), Some(1))],
            json!({"discounts": [discount("di_1", restricted, None)]}),
        ))
        .unwrap();
        assert_eq!(mrr(&input), 900);
    }

    #[test]
    fn errors_name_the_subscription_and_the_object() {
        let err = MrrInputError::MissingTiers {
            subscription: "sub_9".into(),
            price: "price_9".into(),
        };
        let text = err.to_string();
        assert!(text.contains("sub_9") && text.contains("price_9"), "{text}");
    }
}
