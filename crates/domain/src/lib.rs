//! The billing domain: pure types and rules with no IO, so every rule can be
//! unit-tested exhaustively and reused by every service.
//!
//! - [`ids`]: typed, prefix-checked Stripe ids and the CSCX [`TenantId`].
//! - [`money`]: [`Currency`], [`Money`] in minor units, per-currency totals.
//! - [`decimal`]: exact decimals for Stripe's `*_decimal` strings and percentages.
//! - [`mrr`]: monthly recurring revenue of a subscription, by Stripe's rules.
//! - [`movement`]: how an MRR change is classified (new, expansion, churn, …).
//! - [`mrr_history`]: month-end MRR and movements over time from recorded changes.
//! - [`matching`]: linking Stripe customers to CSCX accounts (metadata id,
//!   business email domain, company name).
//! - [`webhook_signature`]: Stripe's `Stripe-Signature` scheme, verified and produced.
//! - [`chat`]: the chat commands (billing status, failed payments, MRR, alerts) and
//!   which account a typed name means.
//! - [`risk`]: risk signals from invoices, subscriptions, cards and disputes,
//!   the billing health score, revenue at risk and CSM alert rules.

pub mod chat;
pub mod decimal;
pub mod ids;
pub mod matching;
pub mod money;
pub mod movement;
pub mod mrr;
pub mod mrr_history;
mod ratio;
pub mod risk;
pub mod webhook_signature;

pub use decimal::{Decimal, DecimalError};
pub use ids::{
    IdError, StripeAccountId, StripeCustomerId, StripeEventId, StripeInvoiceId,
    StripePaymentMethodId, StripePriceId, StripeSubscriptionId, TenantId,
};
pub use matching::{
    AccountCandidate, AccountId, AccountIndex, CustomerEvidence, Link, MatchConfig, MatchDecision,
    MatchMethod, ScoredCandidate,
};
pub use money::{Currency, CurrencyError, Money, MoneyByCurrency, MoneyError};
pub use movement::{classify_movement, Movement, MovementError, MovementKind};
pub use mrr::{
    arr_by_currency, subscription_mrr, total_mrr, CancelAtPeriodEnd, Coupon, CouponDuration,
    CouponValue, Discount, Interval, ItemForMrr, Mrr, MrrError, MrrPolicy, PercentOff,
    PercentOffError, PriceForMrr, PricingScheme, QuantityRounding, Recurring, SubscriptionForMrr,
    SubscriptionStatus, Tier, TiersMode, TransformQuantity, UnknownStatus, UsageType,
};
