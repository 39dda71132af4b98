//! The MRR oracle used for the truth file. Deliberately small and independent of the
//! engine's billing code, following Stripe's billing-analytics rules:
//!
//! * only `active` and `past_due` subscriptions count; `trialing`, `incomplete`,
//!   `incomplete_expired`, `unpaid`, `canceled`, `paused` count 0, and so does a
//!   subscription with `pause_collection` set;
//! * per item `unit_amount × quantity` (tiers evaluated at the quantity: volume or
//!   graduated, flat amounts included); metered items count 0;
//! * normalised to a month: month/N ÷ N, year/N ÷ 12N, week/N × 52 ÷ 12 ÷ N,
//!   day/N × 365 ÷ 12 ÷ N;
//! * `forever` coupons reduce MRR (percent off, or amount off per billing interval,
//!   floored at 0); `once` and `repeating` coupons do not;
//! * `cancel_at_period_end = true` counts 0 from the moment cancellation is requested
//!   (Stripe's billing-analytics default, and `domain::mrr`'s default policy; the truth
//!   file states this choice);
//! * exact rational arithmetic, rounded once at the end, half up, to the minor unit;
//!   per currency, never converted.

use crate::model::{Interval, Price, Subscription};
use std::collections::BTreeMap;

/// An exact non-negative fraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ratio {
    pub num: i128,
    pub den: i128,
}

fn gcd(a: i128, b: i128) -> i128 {
    if b == 0 {
        a.abs().max(1)
    } else {
        gcd(b, a % b)
    }
}

impl Ratio {
    pub const ZERO: Ratio = Ratio { num: 0, den: 1 };

    pub fn new(num: i128, den: i128) -> Ratio {
        let g = gcd(num, den);
        Ratio {
            num: num / g,
            den: den / g,
        }
    }

    pub fn plus(self, o: Ratio) -> Ratio {
        Ratio::new(self.num * o.den + o.num * self.den, self.den * o.den)
    }

    /// Half-up rounding to an integer.
    pub fn round(self) -> i64 {
        ((2 * self.num + self.den).div_euclid(2 * self.den)) as i64
    }
}

/// What the price charges per billing interval for `quantity`.
pub fn price_amount(p: &Price, quantity: i64) -> i64 {
    let q = quantity.max(0);
    if let Some(tiers) = &p.tiers {
        if p.tiers_mode == Some("volume") {
            for t in tiers {
                if t.up_to.is_none_or(|u| q <= u) {
                    return t.unit_amount.unwrap_or(0) * q + t.flat_amount.unwrap_or(0);
                }
            }
            return 0;
        }
        // graduated
        let mut total = 0;
        let mut done = 0;
        for t in tiers {
            if done >= q {
                break;
            }
            let top = t.up_to.unwrap_or(q).min(q);
            total += (top - done) * t.unit_amount.unwrap_or(0) + t.flat_amount.unwrap_or(0);
            done = top;
        }
        return total;
    }
    p.unit_amount.unwrap_or(0) * q
}

/// Whether a subscription counts towards MRR.
pub fn counts(sub: &Subscription) -> bool {
    matches!(sub.status, "active" | "past_due") && sub.pause_collection.is_none()
}

/// The subscription's exact MRR in its currency's minor unit.
pub fn subscription_mrr(sub: &Subscription) -> Ratio {
    if !counts(sub) || sub.cancel_at_period_end {
        return Ratio::ZERO;
    }
    let mut per_interval: i128 = 0;
    let mut interval = (Interval::Month, 1i128);
    for item in &sub.items.data {
        let Some(rec) = &item.price.recurring else {
            continue;
        };
        interval = (rec.interval, rec.interval_count.max(1) as i128);
        if rec.usage_type == "metered" {
            continue;
        }
        per_interval += price_amount(&item.price, item.quantity.unwrap_or(1)) as i128;
    }
    // Forever coupons only; the result is amount-per-interval as num/den.
    let mut amount = Ratio::new(per_interval, 1);
    if let Some(d) = &sub.discount {
        if d.coupon.duration == "forever" {
            if let Some(bp) = d.coupon.percent_off {
                amount = Ratio::new(per_interval * (10_000 - bp as i128).max(0), 10_000);
            } else if let Some(off) = d.coupon.amount_off {
                amount = Ratio::new((per_interval - off as i128).max(0), 1);
            }
        }
    }
    let (iv, n) = interval;
    let (mul, div) = match iv {
        Interval::Month => (1, n),
        Interval::Year => (1, 12 * n),
        Interval::Week => (52, 12 * n),
        Interval::Day => (365, 12 * n),
    };
    Ratio::new(amount.num * mul, amount.den * div)
}

/// MRR per currency over several subscriptions, rounded once at the end.
pub fn mrr_by_currency<'a>(
    subs: impl IntoIterator<Item = &'a Subscription>,
) -> BTreeMap<String, i64> {
    let mut acc: BTreeMap<String, Ratio> = BTreeMap::new();
    for s in subs {
        let r = subscription_mrr(s);
        let e = acc.entry(s.currency.clone()).or_insert(Ratio::ZERO);
        *e = e.plus(r);
    }
    acc.into_iter().map(|(c, r)| (c, r.round())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::new_subscription;
    use crate::model::*;

    fn price(amount: i64, interval: Interval, count: i64, usage: &'static str) -> Price {
        Price {
            id: "price_1".into(),
            object: Lit("price"),
            active: true,
            billing_scheme: "per_unit",
            created: 0,
            currency: "usd".into(),
            custom_unit_amount: Null,
            livemode: false,
            lookup_key: None,
            metadata: Metadata::new(),
            nickname: None,
            product: "prod_1".into(),
            recurring: Some(Recurring {
                interval,
                interval_count: count,
                meter: Null,
                trial_period_days: None,
                usage_type: usage,
            }),
            tax_behavior: "unspecified",
            tiers: None,
            tiers_mode: None,
            transform_quantity: Null,
            kind: "recurring",
            unit_amount: Some(amount),
            unit_amount_decimal: Some(amount.to_string()),
        }
    }

    fn sub(status: &'static str, items: Vec<(Price, i64)>, coupon: Option<Coupon>) -> Subscription {
        let data = items
            .into_iter()
            .map(|(p, q)| SubscriptionItem {
                id: "si_1".into(),
                object: Lit("subscription_item"),
                billing_thresholds: Null,
                created: 0,
                current_period_end: 0,
                current_period_start: 0,
                discounts: vec![],
                metadata: Metadata::new(),
                plan: Plan::from_price(&p),
                price: p,
                quantity: Some(q),
                subscription: "sub_1".into(),
                tax_rates: EmptyList,
            })
            .collect();
        let discount = coupon.map(|c| Discount {
            id: "di_1".into(),
            object: Lit("discount"),
            checkout_session: Null,
            source: DiscountSource::coupon(&c.id),
            coupon: c,
            customer: "cus_1".into(),
            end: None,
            invoice: Null,
            invoice_item: Null,
            promotion_code: Null,
            start: 0,
            subscription: Some("sub_1".into()),
            subscription_item: Null,
        });
        let mut s = new_subscription(
            "sub_1".into(),
            "cus_1".into(),
            "usd".into(),
            0,
            data,
            discount,
        );
        s.status = status;
        s
    }

    fn coupon(percent_bp: Option<i64>, amount: Option<i64>, duration: &'static str) -> Coupon {
        Coupon {
            id: "c".into(),
            object: Lit("coupon"),
            amount_off: amount,
            created: 0,
            currency: amount.map(|_| "usd".into()),
            duration,
            duration_in_months: (duration == "repeating").then_some(3),
            livemode: false,
            max_redemptions: Null,
            metadata: Metadata::new(),
            name: None,
            percent_off: percent_bp,
            redeem_by: Null,
            times_redeemed: 0,
            valid: true,
        }
    }

    fn mrr(s: &Subscription) -> i64 {
        subscription_mrr(s).round()
    }

    #[test]
    fn statuses() {
        let p = || vec![(price(1000, Interval::Month, 1, "licensed"), 3)];
        assert_eq!(mrr(&sub("active", p(), None)), 3000);
        assert_eq!(mrr(&sub("past_due", p(), None)), 3000);
        for st in [
            "trialing",
            "unpaid",
            "canceled",
            "incomplete",
            "incomplete_expired",
            "paused",
        ] {
            assert_eq!(mrr(&sub(st, p(), None)), 0, "{st}");
        }
        let mut paused = sub("active", p(), None);
        paused.pause_collection = Some(PauseCollection {
            behavior: "void".into(),
            resumes_at: None,
        });
        assert_eq!(mrr(&paused), 0);
        let mut cape = sub("active", p(), None);
        cape.cancel_at_period_end = true;
        assert_eq!(
            mrr(&cape),
            0,
            "stops counting when cancellation is requested"
        );
    }

    #[test]
    fn intervals() {
        let one = |a, i, n| mrr(&sub("active", vec![(price(a, i, n, "licensed"), 1)], None));
        assert_eq!(one(12000, Interval::Year, 1), 1000);
        assert_eq!(one(10000, Interval::Year, 1), 833); // 833.33
        assert_eq!(one(3000, Interval::Month, 3), 1000);
        assert_eq!(one(1000, Interval::Week, 1), 4333); // 4333.33
        assert_eq!(one(100, Interval::Day, 1), 3042); // 3041.67
        assert_eq!(one(1, Interval::Month, 2), 1); // 0.5 rounds half up
        assert_eq!(one(99, Interval::Year, 2), 4); // 4.125
    }

    #[test]
    fn metered_and_multi_item() {
        let s = sub(
            "active",
            vec![
                (price(5000, Interval::Month, 1, "licensed"), 1),
                (price(1200, Interval::Month, 1, "licensed"), 10),
                (price(2, Interval::Month, 1, "metered"), 1),
            ],
            None,
        );
        assert_eq!(mrr(&s), 17000);
    }

    #[test]
    fn coupons() {
        let p = || vec![(price(10000, Interval::Month, 1, "licensed"), 1)];
        assert_eq!(
            mrr(&sub(
                "active",
                p(),
                Some(coupon(Some(2500), None, "forever"))
            )),
            7500
        );
        assert_eq!(
            mrr(&sub(
                "active",
                p(),
                Some(coupon(Some(1250), None, "forever"))
            )),
            8750
        );
        assert_eq!(
            mrr(&sub("active", p(), Some(coupon(Some(5000), None, "once")))),
            10000
        );
        assert_eq!(
            mrr(&sub(
                "active",
                p(),
                Some(coupon(Some(5000), None, "repeating"))
            )),
            10000
        );
        assert_eq!(
            mrr(&sub(
                "active",
                p(),
                Some(coupon(None, Some(2000), "forever"))
            )),
            8000
        );
        assert_eq!(
            mrr(&sub(
                "active",
                p(),
                Some(coupon(None, Some(20000), "forever"))
            )),
            0
        );
        // Amount off applies per interval: yearly 120000 - 12000 = 108000 / 12 = 9000.
        let y = vec![(price(120000, Interval::Year, 1, "licensed"), 1)];
        assert_eq!(
            mrr(&sub(
                "active",
                y,
                Some(coupon(None, Some(12000), "forever"))
            )),
            9000
        );
    }

    #[test]
    fn rounds_once_at_the_end() {
        // Three subs of 1/3 each: rounding each would give 0; summing exactly gives 1.
        let s = || {
            sub(
                "active",
                vec![(price(1, Interval::Month, 3, "licensed"), 1)],
                None,
            )
        };
        let subs = [s(), s(), s()];
        assert_eq!(mrr_by_currency(subs.iter())["usd"], 1);
    }

    #[test]
    fn tiers() {
        let mut p = price(0, Interval::Month, 1, "licensed");
        p.unit_amount = None;
        p.tiers = Some(vec![
            Tier::new(Some(10), 1000, 0),
            Tier::new(None, 800, 500),
        ]);
        p.tiers_mode = Some("volume");
        assert_eq!(mrr(&sub("active", vec![(p.clone(), 12)], None)), 10100);
        p.tiers_mode = Some("graduated");
        assert_eq!(mrr(&sub("active", vec![(p, 12)], None)), 12100);
    }
}
