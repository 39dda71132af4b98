//! Golden tests, one or more per rule in the module docs, and property tests
//! for the invariants.

use chrono::TimeZone;
use proptest::prelude::*;

use super::*;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap()
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::USD)
}

fn sub(currency: Currency, items: Vec<ItemForMrr>) -> SubscriptionForMrr {
    SubscriptionForMrr {
        status: SubscriptionStatus::Active,
        currency,
        items,
        discounts: Vec::new(),
        cancel_at_period_end: false,
        pause_collection: false,
    }
}

fn usd_sub(items: Vec<ItemForMrr>) -> SubscriptionForMrr {
    sub(Currency::USD, items)
}

fn item(unit_amount: u64, interval: Interval, count: u32, quantity: u64) -> ItemForMrr {
    ItemForMrr::new(
        PriceForMrr::per_unit(unit_amount, interval, count),
        quantity,
    )
}

fn monthly(unit_amount: u64) -> ItemForMrr {
    item(unit_amount, Interval::Month, 1, 1)
}

fn mrr_with(subscription: &SubscriptionForMrr, policy: &MrrPolicy) -> i64 {
    let mrr = subscription_mrr(subscription, policy, now()).unwrap();
    assert_eq!(mrr.monthly.currency, subscription.currency);
    mrr.monthly.minor
}

fn mrr(subscription: &SubscriptionForMrr) -> i64 {
    mrr_with(subscription, &MrrPolicy::default())
}

fn percent(p: &str) -> CouponValue {
    CouponValue::PercentOff(p.parse().unwrap())
}

fn forever(value: CouponValue) -> Discount {
    Discount::new(value, CouponDuration::Forever)
}

fn subtracting_temporary() -> MrrPolicy {
    MrrPolicy {
        subtract_temporary_discounts: true,
        ..MrrPolicy::default()
    }
}

fn tiered(mode: TiersMode, tiers: &[(Option<u64>, u64, u64)]) -> PriceForMrr {
    PriceForMrr {
        recurring: Recurring::licensed(Interval::Month, 1),
        scheme: PricingScheme::Tiered {
            mode,
            tiers: tiers
                .iter()
                .map(|&(up_to, unit, flat)| Tier {
                    up_to,
                    unit_amount: Decimal::from_integer(unit),
                    flat_amount: Decimal::from_integer(flat),
                })
                .collect(),
        },
    }
}

/// 1–5: $10 each, 6–10: $8 each + $5 flat, 11+: $5 each + $10 flat.
fn three_tiers(mode: TiersMode) -> PriceForMrr {
    tiered(
        mode,
        &[(Some(5), 1000, 0), (Some(10), 800, 500), (None, 500, 1000)],
    )
}

// ---- Rule 4: normalising to a month ------------------------------------

#[test]
fn normalises_every_interval_and_count() {
    let cases = [
        // (interval, count, amount per period, expected monthly cents)
        (Interval::Month, 1, 1000, 1000),
        (Interval::Month, 3, 3000, 1000),
        (Interval::Month, 3, 10000, 3333), // 3333.33…
        (Interval::Year, 1, 12000, 1000),
        (Interval::Year, 1, 10000, 833), // 833.33…
        (Interval::Year, 2, 24000, 1000),
        (Interval::Year, 2, 10000, 417), // 416.66…
        (Interval::Week, 1, 1000, 4333), // 1000 × 52 / 12 = 4333.33…
        (Interval::Week, 2, 1000, 2167), // 2166.66…
        (Interval::Day, 1, 100, 3042),   // 100 × 365 / 12 = 3041.66…
        (Interval::Day, 30, 3000, 3042), // 3000 × 365 / 360 = 3041.66…
        (Interval::Day, 30, 1200, 1217), // 1216.66…
    ];
    for (interval, count, amount, expected) in cases {
        let subscription = usd_sub(vec![item(amount, interval, count, 1)]);
        assert_eq!(
            mrr(&subscription),
            expected,
            "{interval:?}/{count} of {amount}"
        );
    }
}

#[test]
fn zero_interval_count_is_an_error() {
    let subscription = usd_sub(vec![item(1000, Interval::Month, 0, 1)]);
    assert_eq!(
        subscription_mrr(&subscription, &MrrPolicy::default(), now()),
        Err(MrrError::ZeroIntervalCount)
    );
}

// ---- Rule 6: rounding once, half away from zero ------------------------

#[test]
fn rounds_half_up_at_the_end() {
    // 30 cents a year = 2.5 cents a month.
    assert_eq!(mrr(&usd_sub(vec![item(30, Interval::Year, 1, 1)])), 3);
    // 42 cents a year = 3.5.
    assert_eq!(mrr(&usd_sub(vec![item(42, Interval::Year, 1, 1)])), 4);
    // 29 cents a year = 2.41…
    assert_eq!(mrr(&usd_sub(vec![item(29, Interval::Year, 1, 1)])), 2);
}

#[test]
fn rounds_once_not_per_item() {
    // Each item is 833.33… cents; rounding per item would give 1666.
    let subscription = usd_sub(vec![
        item(10000, Interval::Year, 1, 1),
        item(10000, Interval::Year, 1, 1),
    ]);
    assert_eq!(mrr(&subscription), 1667);
}

#[test]
fn zero_decimal_currency_rounds_to_whole_units() {
    let yen =
        |amount, interval, count| mrr(&sub(Currency::JPY, vec![item(amount, interval, count, 1)]));
    assert_eq!(yen(1000, Interval::Month, 1), 1000);
    assert_eq!(yen(1000, Interval::Year, 1), 83); // ¥83.33…
    assert_eq!(yen(30, Interval::Year, 1), 3); // ¥2.5
    assert_eq!(yen(1000, Interval::Week, 1), 4333); // ¥4333.33…
    let mrr = subscription_mrr(
        &sub(Currency::JPY, vec![item(10000, Interval::Year, 1, 1)]),
        &MrrPolicy::default(),
        now(),
    )
    .unwrap();
    assert_eq!(mrr.monthly, Money::new(833, Currency::JPY));
    assert_eq!(mrr.monthly.to_string(), "833 JPY");
}

#[test]
fn three_decimal_currency_keeps_thousandths() {
    let subscription = sub(Currency::KWD, vec![item(12_345, Interval::Year, 1, 1)]);
    // 12.345 KWD a year = 1028.75 fils a month → 1029 fils.
    assert_eq!(mrr(&subscription), 1029);
}

// ---- Rule 3: items ------------------------------------------------------

#[test]
fn multiplies_by_quantity() {
    assert_eq!(mrr(&usd_sub(vec![item(1000, Interval::Month, 1, 5)])), 5000);
    assert_eq!(mrr(&usd_sub(vec![item(12000, Interval::Year, 1, 3)])), 3000);
    assert_eq!(mrr(&usd_sub(vec![item(1000, Interval::Month, 1, 0)])), 0);
}

#[test]
fn sums_multiple_items_of_different_intervals() {
    let subscription = usd_sub(vec![
        item(1000, Interval::Month, 1, 2), // 2000
        item(12000, Interval::Year, 1, 1), // 1000
        item(300, Interval::Week, 1, 1),   // 1300
    ]);
    assert_eq!(mrr(&subscription), 4300);
}

#[test]
fn free_plans_and_empty_subscriptions_count_zero() {
    assert_eq!(mrr(&usd_sub(vec![item(0, Interval::Month, 1, 10)])), 0);
    assert_eq!(mrr(&usd_sub(Vec::new())), 0);
}

#[test]
fn metered_items_count_zero() {
    let mut metered = PriceForMrr::per_unit(5, Interval::Month, 1);
    metered.recurring.usage_type = UsageType::Metered;
    let subscription = usd_sub(vec![ItemForMrr::new(metered.clone(), 0), monthly(2000)]);
    assert_eq!(mrr(&subscription), 2000);
    // Even with a quantity, metered prices are excluded.
    assert_eq!(mrr(&usd_sub(vec![ItemForMrr::new(metered, 1_000)])), 0);
}

#[test]
fn unit_amount_decimal_keeps_fractions_until_the_end() {
    let decimal_item = |amount: &str, interval, quantity| ItemForMrr {
        price: PriceForMrr {
            recurring: Recurring::licensed(interval, 1),
            scheme: PricingScheme::PerUnit {
                unit_amount: dec(amount),
                transform_quantity: None,
            },
        },
        quantity,
        discounts: Vec::new(),
    };
    // 0.5 cent × 3 = 1.5 → 2.
    assert_eq!(
        mrr(&usd_sub(vec![decimal_item("0.5", Interval::Month, 3)])),
        2
    );
    // 1234.5678 → 1235.
    assert_eq!(
        mrr(&usd_sub(vec![decimal_item(
            "1234.5678",
            Interval::Month,
            1
        )])),
        1235
    );
    // 33.333333333333 × 3 = 99.999999999999 → 100.
    assert_eq!(
        mrr(&usd_sub(vec![decimal_item(
            "33.333333333333",
            Interval::Month,
            3
        )])),
        100
    );
    // 100.5 a year = 8.375 a month → 8.
    assert_eq!(
        mrr(&usd_sub(vec![decimal_item("100.5", Interval::Year, 1)])),
        8
    );
    // 0.25 cent per API seat × 1000 seats.
    assert_eq!(
        mrr(&usd_sub(vec![decimal_item("0.25", Interval::Month, 1000)])),
        250
    );
}

#[test]
fn transform_quantity_bills_whole_packages() {
    let package = |round, quantity| {
        usd_sub(vec![ItemForMrr::new(
            PriceForMrr {
                recurring: Recurring::licensed(Interval::Month, 1),
                scheme: PricingScheme::PerUnit {
                    unit_amount: Decimal::from_integer(1000),
                    transform_quantity: Some(TransformQuantity {
                        divide_by: 10,
                        round,
                    }),
                },
            },
            quantity,
        )])
    };
    assert_eq!(mrr(&package(QuantityRounding::Up, 25)), 3000);
    assert_eq!(mrr(&package(QuantityRounding::Down, 25)), 2000);
    assert_eq!(mrr(&package(QuantityRounding::Up, 30)), 3000);

    let mut broken = package(QuantityRounding::Up, 25);
    if let PricingScheme::PerUnit {
        transform_quantity: Some(transform),
        ..
    } = &mut broken.items[0].price.scheme
    {
        transform.divide_by = 0;
    }
    assert_eq!(
        subscription_mrr(&broken, &MrrPolicy::default(), now()),
        Err(MrrError::ZeroDivideBy)
    );
}

#[test]
fn volume_tiers_bill_every_unit_at_the_reached_tier() {
    let at = |quantity| {
        mrr(&usd_sub(vec![ItemForMrr::new(
            three_tiers(TiersMode::Volume),
            quantity,
        )]))
    };
    assert_eq!(at(3), 3000);
    assert_eq!(at(5), 5000); // up_to is inclusive
    assert_eq!(at(6), 6 * 800 + 500);
    assert_eq!(at(7), 7 * 800 + 500);
    assert_eq!(at(20), 20 * 500 + 1000);
    assert_eq!(at(0), 0);
}

#[test]
fn graduated_tiers_bill_each_tier_its_units_plus_flat() {
    let at = |quantity| {
        mrr(&usd_sub(vec![ItemForMrr::new(
            three_tiers(TiersMode::Graduated),
            quantity,
        )]))
    };
    assert_eq!(at(3), 3000);
    assert_eq!(at(5), 5000);
    assert_eq!(at(7), 5000 + 2 * 800 + 500);
    assert_eq!(at(10), 5000 + 5 * 800 + 500);
    assert_eq!(at(20), 5000 + (5 * 800 + 500) + (10 * 500 + 1000));
    assert_eq!(at(0), 0);
}

#[test]
fn graduated_base_fee_tier() {
    // A $20 base fee covering up to 10 seats, then $5 per extra seat.
    let price = tiered(TiersMode::Graduated, &[(Some(10), 0, 2000), (None, 500, 0)]);
    let at = |quantity| mrr(&usd_sub(vec![ItemForMrr::new(price.clone(), quantity)]));
    assert_eq!(at(1), 2000);
    assert_eq!(at(10), 2000);
    assert_eq!(at(12), 3000);
}

#[test]
fn tiered_price_with_a_yearly_interval_is_normalised() {
    let mut price = three_tiers(TiersMode::Graduated);
    price.recurring = Recurring::licensed(Interval::Year, 1);
    // 7100 a year → 591.66… a month.
    assert_eq!(mrr(&usd_sub(vec![ItemForMrr::new(price, 7)])), 592);
}

#[test]
fn invalid_tiers_are_errors() {
    let compute = |price: PriceForMrr, quantity| {
        subscription_mrr(
            &usd_sub(vec![ItemForMrr::new(price, quantity)]),
            &MrrPolicy::default(),
            now(),
        )
    };
    for mode in [TiersMode::Volume, TiersMode::Graduated] {
        assert!(matches!(
            compute(tiered(mode, &[]), 1),
            Err(MrrError::InvalidTiers(_))
        ));
        assert!(matches!(
            compute(
                tiered(mode, &[(Some(10), 1, 0), (Some(5), 1, 0), (None, 1, 0)]),
                1
            ),
            Err(MrrError::InvalidTiers(_))
        ));
        assert!(matches!(
            compute(tiered(mode, &[(None, 1, 0), (Some(5), 1, 0)]), 1),
            Err(MrrError::InvalidTiers(_))
        ));
        // Without an `inf` tier a quantity inside the tiers still works…
        assert_eq!(
            compute(tiered(mode, &[(Some(5), 100, 0)]), 5)
                .unwrap()
                .monthly,
            usd(500)
        );
        // …but one above them cannot be priced.
        assert!(matches!(
            compute(tiered(mode, &[(Some(5), 100, 0)]), 6),
            Err(MrrError::InvalidTiers(_))
        ));
    }
}

#[test]
fn overflow_is_an_error_not_a_wrap() {
    let subscription = usd_sub(vec![item(u64::MAX, Interval::Month, 1, u64::MAX)]);
    assert_eq!(
        subscription_mrr(&subscription, &MrrPolicy::default(), now()),
        Err(MrrError::Overflow)
    );
    // Fits in i128 but not in an i64 of cents.
    let subscription = usd_sub(vec![item(u64::MAX, Interval::Month, 1, 1)]);
    assert_eq!(
        subscription_mrr(&subscription, &MrrPolicy::default(), now()),
        Err(MrrError::Overflow)
    );
}

// ---- Rule 5: discounts --------------------------------------------------

#[test]
fn forever_percent_coupon_reduces_mrr() {
    let with = |coupon: CouponValue, amount| {
        let mut subscription = usd_sub(vec![monthly(amount)]);
        subscription.discounts.push(forever(coupon));
        mrr(&subscription)
    };
    assert_eq!(with(percent("20"), 5000), 4000);
    assert_eq!(with(percent("12.5"), 1000), 875);
    assert_eq!(with(percent("33.33"), 1000), 667); // 666.7
    assert_eq!(with(percent("100"), 5000), 0);
    assert_eq!(with(percent("0"), 5000), 5000);
    assert_eq!(
        with(
            CouponValue::PercentOff(PercentOff::from_basis_points(2550).unwrap()),
            10000
        ),
        7450
    );
}

#[test]
fn forever_percent_coupon_applies_to_the_exact_sum() {
    // 10 % off two 833.33… items: 1500 exactly, not 1499.4 from rounded items.
    let mut subscription = usd_sub(vec![
        item(10000, Interval::Year, 1, 1),
        item(10000, Interval::Year, 1, 1),
    ]);
    subscription.discounts.push(forever(percent("10")));
    assert_eq!(mrr(&subscription), 1500);
}

#[test]
fn forever_amount_off_is_normalised_to_the_interval_and_floored() {
    let with = |items: Vec<ItemForMrr>, off| {
        let mut subscription = usd_sub(items);
        subscription
            .discounts
            .push(forever(CouponValue::AmountOff(usd(off))));
        mrr(&subscription)
    };
    // $5 off a $20 monthly invoice.
    assert_eq!(with(vec![monthly(2000)], 500), 1500);
    // $60 off each $240 yearly invoice: (240 − 60) / 12 = $15.
    assert_eq!(with(vec![item(24000, Interval::Year, 1, 1)], 6000), 1500);
    // $5 off each quarterly invoice: 1000 − 166.66… = 833.33…
    assert_eq!(with(vec![item(3000, Interval::Month, 3, 1)], 500), 833);
    // $30 off a $20 invoice: floored at 0, never negative.
    assert_eq!(with(vec![monthly(2000)], 3000), 0);
}

#[test]
fn subscription_amount_off_uses_the_shortest_item_interval() {
    // Invoices go out monthly (and yearly), so $5 comes off every month.
    let items = vec![item(12000, Interval::Year, 1, 1), monthly(2000)];
    for items in [items.clone(), items.into_iter().rev().collect()] {
        let mut subscription = usd_sub(items);
        subscription
            .discounts
            .push(forever(CouponValue::AmountOff(usd(500))));
        assert_eq!(mrr(&subscription), 1000 + 2000 - 500);
    }
}

#[test]
fn amount_off_in_another_currency_is_an_error() {
    let mut subscription = usd_sub(vec![monthly(2000)]);
    subscription
        .discounts
        .push(forever(CouponValue::AmountOff(Money::new(
            500,
            Currency::EUR,
        ))));
    assert_eq!(
        subscription_mrr(&subscription, &MrrPolicy::default(), now()),
        Err(MrrError::CouponCurrency {
            subscription: Currency::USD,
            coupon: Currency::EUR
        })
    );
}

#[test]
fn discounts_apply_in_order_with_a_floor_after_each() {
    let mut percent_first = usd_sub(vec![monthly(10000)]);
    percent_first.discounts = vec![
        forever(percent("10")),
        forever(CouponValue::AmountOff(usd(1000))),
    ];
    assert_eq!(mrr(&percent_first), 8000);

    let mut amount_first = percent_first.clone();
    amount_first.discounts.reverse();
    assert_eq!(mrr(&amount_first), 8100);
}

#[test]
fn item_discounts_apply_to_their_item_only() {
    let mut discounted = monthly(2000);
    discounted.discounts.push(forever(percent("50")));
    // $15 off the item, normalised by the item's own (yearly) interval.
    let mut yearly = item(24000, Interval::Year, 1, 1);
    yearly
        .discounts
        .push(forever(CouponValue::AmountOff(usd(1500))));
    let subscription = usd_sub(vec![discounted, monthly(3000), yearly]);
    assert_eq!(mrr(&subscription), 1000 + 3000 + 1875);
}

#[test]
fn once_and_repeating_coupons_are_ignored_by_default() {
    for duration in [
        CouponDuration::Once,
        CouponDuration::Repeating { months: 3 },
    ] {
        let mut subscription = usd_sub(vec![monthly(5000)]);
        subscription.discounts = vec![
            Discount::new(percent("50"), duration),
            Discount::new(CouponValue::AmountOff(usd(1000)), duration),
        ];
        assert_eq!(mrr(&subscription), 5000, "{duration:?}");
    }
}

#[test]
fn once_and_repeating_coupons_subtract_when_configured() {
    let policy = subtracting_temporary();
    for duration in [
        CouponDuration::Once,
        CouponDuration::Repeating { months: 3 },
    ] {
        let mut subscription = usd_sub(vec![monthly(5000)]);
        subscription.discounts = vec![Discount::new(percent("50"), duration)];
        assert_eq!(mrr_with(&subscription, &policy), 2500, "{duration:?}");

        subscription.discounts = vec![Discount::new(CouponValue::AmountOff(usd(1000)), duration)];
        assert_eq!(mrr_with(&subscription, &policy), 4000, "{duration:?}");
    }
}

#[test]
fn expired_discounts_never_apply() {
    let policy = subtracting_temporary();
    let mut discount = Discount::new(percent("50"), CouponDuration::Repeating { months: 3 });
    let mut subscription = usd_sub(vec![monthly(5000)]);

    discount.end = Some(now() + chrono::Duration::days(1));
    subscription.discounts = vec![discount];
    assert_eq!(mrr_with(&subscription, &policy), 2500);

    discount.end = Some(now());
    subscription.discounts = vec![discount];
    assert_eq!(mrr_with(&subscription, &policy), 5000);

    // A forever discount that Stripe ended (e.g. removed at a date).
    subscription.discounts = vec![Discount {
        end: Some(now() - chrono::Duration::days(1)),
        ..forever(percent("50"))
    }];
    assert_eq!(mrr(&subscription), 5000);
}

// ---- Rules 1 and 2: status, pause, cancellation -------------------------

#[test]
fn only_active_and_past_due_count_by_default() {
    for status in SubscriptionStatus::ALL {
        let mut subscription = usd_sub(vec![monthly(5000)]);
        subscription.status = status;
        let expected = match status {
            SubscriptionStatus::Active | SubscriptionStatus::PastDue => 5000,
            SubscriptionStatus::Trialing
            | SubscriptionStatus::Incomplete
            | SubscriptionStatus::IncompleteExpired
            | SubscriptionStatus::Unpaid
            | SubscriptionStatus::Canceled
            | SubscriptionStatus::Paused => 0,
        };
        assert_eq!(mrr(&subscription), expected, "{status}");
    }
}

#[test]
fn pause_collection_counts_zero_whatever_the_status() {
    let mut subscription = usd_sub(vec![monthly(5000)]);
    subscription.pause_collection = true;
    assert_eq!(mrr(&subscription), 0);
    subscription.status = SubscriptionStatus::PastDue;
    assert_eq!(mrr(&subscription), 0);
}

#[test]
fn counted_statuses_are_configurable() {
    let policy = MrrPolicy {
        counted_statuses: [SubscriptionStatus::Active, SubscriptionStatus::Trialing]
            .into_iter()
            .collect(),
        ..MrrPolicy::default()
    };
    let mut subscription = usd_sub(vec![monthly(5000)]);
    subscription.status = SubscriptionStatus::Trialing;
    assert_eq!(mrr_with(&subscription, &policy), 5000);
    subscription.status = SubscriptionStatus::PastDue;
    assert_eq!(mrr_with(&subscription, &policy), 0);
}

#[test]
fn cancel_at_period_end_stops_mrr_at_request_by_default() {
    let mut subscription = usd_sub(vec![monthly(5000)]);
    subscription.cancel_at_period_end = true;
    assert_eq!(
        MrrPolicy::default().cancel_at_period_end,
        CancelAtPeriodEnd::StopAtRequest
    );
    assert_eq!(mrr(&subscription), 0);
}

#[test]
fn cancel_at_period_end_can_count_until_the_period_ends() {
    let policy = MrrPolicy {
        cancel_at_period_end: CancelAtPeriodEnd::CountUntilPeriodEnd,
        ..MrrPolicy::default()
    };
    let mut subscription = usd_sub(vec![monthly(5000)]);
    subscription.cancel_at_period_end = true;
    assert_eq!(mrr_with(&subscription, &policy), 5000);
    // Once Stripe cancels it at period end, it stops counting.
    subscription.status = SubscriptionStatus::Canceled;
    assert_eq!(mrr_with(&subscription, &policy), 0);
}

// ---- Rule 7: currencies, totals and ARR --------------------------------

#[test]
fn totals_are_kept_per_currency() {
    let mrrs = [
        Mrr { monthly: usd(1000) },
        Mrr {
            monthly: Money::new(500, Currency::EUR),
        },
        Mrr { monthly: usd(2500) },
        Mrr {
            monthly: Money::new(3000, Currency::JPY),
        },
        Mrr::zero(Currency::GBP),
    ];
    let totals = total_mrr(&mrrs).unwrap();
    assert_eq!(totals.len(), 4);
    assert_eq!(totals.get(Currency::USD), usd(3500));
    assert_eq!(totals.get(Currency::EUR), Money::new(500, Currency::EUR));
    assert_eq!(totals.get(Currency::JPY), Money::new(3000, Currency::JPY));
    assert_eq!(totals.get(Currency::GBP), Money::zero(Currency::GBP));

    let arr = arr_by_currency(&totals).unwrap();
    assert_eq!(arr.get(Currency::USD), usd(42000));
    assert_eq!(arr.get(Currency::JPY), Money::new(36000, Currency::JPY));
}

#[test]
fn arr_is_twelve_times_mrr() {
    let mrr = subscription_mrr(
        &usd_sub(vec![item(10000, Interval::Year, 1, 1)]),
        &MrrPolicy::default(),
        now(),
    )
    .unwrap();
    assert_eq!(mrr.monthly, usd(833));
    assert_eq!(mrr.arr().unwrap(), usd(9996));
}

// ---- Types and serde -----------------------------------------------------

#[test]
fn statuses_parse_as_stripe_spells_them() {
    for status in SubscriptionStatus::ALL {
        assert_eq!(
            status.as_str().parse::<SubscriptionStatus>().unwrap(),
            status
        );
        assert_eq!(
            serde_json::to_string(&status).unwrap(),
            format!("\"{status}\"")
        );
    }
    assert!("ended".parse::<SubscriptionStatus>().is_err());
}

#[test]
fn percent_off_is_validated() {
    assert!("100".parse::<PercentOff>().is_ok());
    assert!("100.01".parse::<PercentOff>().is_err());
    assert!("-5".parse::<PercentOff>().is_err());
    assert!(PercentOff::from_basis_points(10_001).is_err());
    assert_eq!(
        PercentOff::from_basis_points(1250).unwrap().percent(),
        dec("12.5")
    );
    assert!(serde_json::from_str::<PercentOff>("\"150\"").is_err());
}

#[test]
fn policy_defaults_when_configured_empty() {
    let policy: MrrPolicy = serde_json::from_str("{}").unwrap();
    assert_eq!(policy, MrrPolicy::default());
    let policy: MrrPolicy = serde_json::from_str(
        r#"{"cancel_at_period_end":"count_until_period_end","subtract_temporary_discounts":true,
            "counted_statuses":["active"]}"#,
    )
    .unwrap();
    assert_eq!(
        policy.cancel_at_period_end,
        CancelAtPeriodEnd::CountUntilPeriodEnd
    );
    assert!(policy.subtract_temporary_discounts);
    assert_eq!(policy.counted_statuses.len(), 1);
    assert!(serde_json::from_str::<MrrPolicy>(r#"{"typo":1}"#).is_err());
}

#[test]
fn subscription_input_deserialises_from_json() {
    let json = r#"{
        "status": "past_due",
        "currency": "eur",
        "items": [
            {"price": {"recurring": {"interval": "year", "interval_count": 1, "usage_type": "licensed"},
                       "scheme": {"billing_scheme": "per_unit", "unit_amount": "12000"}},
             "quantity": 2},
            {"price": {"recurring": {"interval": "month", "interval_count": 1, "usage_type": "licensed"},
                       "scheme": {"billing_scheme": "tiered", "mode": "graduated",
                                  "tiers": [{"up_to": 5, "unit_amount": "100", "flat_amount": "0"},
                                            {"up_to": null, "unit_amount": "50", "flat_amount": "0"}]}},
             "quantity": 7}
        ],
        "discounts": [{"coupon": {"value": {"percent_off": "10"}, "duration": {"duration": "forever"}}}]
    }"#;
    let subscription: SubscriptionForMrr = serde_json::from_str(json).unwrap();
    // (2000 + 500 + 100) × 0.9 = 2340.
    assert_eq!(mrr(&subscription), 2340);
    let round_trip: SubscriptionForMrr =
        serde_json::from_str(&serde_json::to_string(&subscription).unwrap()).unwrap();
    assert_eq!(round_trip, subscription);
}

// ---- Properties -----------------------------------------------------------

fn interval() -> impl Strategy<Value = Interval> {
    prop_oneof![
        Just(Interval::Day),
        Just(Interval::Week),
        Just(Interval::Month),
        Just(Interval::Year)
    ]
}

fn recurring() -> impl Strategy<Value = Recurring> {
    (interval(), 1u32..=36, prop::bool::weighted(0.15)).prop_map(
        |(interval, interval_count, metered)| Recurring {
            interval,
            interval_count,
            usage_type: if metered {
                UsageType::Metered
            } else {
                UsageType::Licensed
            },
        },
    )
}

fn amount() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        (0u64..1_000_000).prop_map(Decimal::from_integer),
        (0i128..1_000_000_000_000, 0u32..=12)
            .prop_map(|(digits, scale)| Decimal::from_parts(digits, scale).unwrap()),
    ]
}

fn tiers() -> impl Strategy<Value = Vec<Tier>> {
    prop::collection::vec((1u64..50, amount(), amount()), 1..5).prop_map(|steps| {
        let mut up_to = 0;
        let last = steps.len() - 1;
        steps
            .into_iter()
            .enumerate()
            .map(|(i, (step, unit_amount, flat_amount))| {
                up_to += step;
                Tier {
                    up_to: (i != last).then_some(up_to),
                    unit_amount,
                    flat_amount,
                }
            })
            .collect()
    })
}

fn scheme() -> impl Strategy<Value = PricingScheme> {
    prop_oneof![
        (amount(), prop::option::of((1u64..20, prop::bool::ANY))).prop_map(
            |(unit_amount, transform)| {
                PricingScheme::PerUnit {
                    unit_amount,
                    transform_quantity: transform.map(|(divide_by, up)| TransformQuantity {
                        divide_by,
                        round: if up {
                            QuantityRounding::Up
                        } else {
                            QuantityRounding::Down
                        },
                    }),
                }
            }
        ),
        (
            prop_oneof![Just(TiersMode::Volume), Just(TiersMode::Graduated)],
            tiers()
        )
            .prop_map(|(mode, tiers)| PricingScheme::Tiered { mode, tiers }),
    ]
}

fn discount(currency: Currency) -> impl Strategy<Value = Discount> {
    let value = prop_oneof![
        (0u16..=10_000)
            .prop_map(|bp| CouponValue::PercentOff(PercentOff::from_basis_points(bp).unwrap())),
        (0i64..10_000_000)
            .prop_map(move |minor| CouponValue::AmountOff(Money::new(minor, currency))),
    ];
    let duration = prop_oneof![
        Just(CouponDuration::Forever),
        Just(CouponDuration::Once),
        (1u32..24).prop_map(|months| CouponDuration::Repeating { months }),
    ];
    (value, duration).prop_map(|(value, duration)| Discount::new(value, duration))
}

fn item_strategy(currency: Currency) -> impl Strategy<Value = ItemForMrr> {
    (
        recurring(),
        scheme(),
        0u64..500,
        prop::collection::vec(discount(currency), 0..2),
    )
        .prop_map(|(recurring, scheme, quantity, discounts)| ItemForMrr {
            price: PriceForMrr { recurring, scheme },
            quantity,
            discounts,
        })
}

fn currency() -> impl Strategy<Value = Currency> {
    prop_oneof![
        Just(Currency::USD),
        Just(Currency::EUR),
        Just(Currency::JPY),
        Just(Currency::KWD)
    ]
}

fn status() -> impl Strategy<Value = SubscriptionStatus> {
    prop::sample::select(SubscriptionStatus::ALL.to_vec())
}

fn subscription() -> impl Strategy<Value = SubscriptionForMrr> {
    currency().prop_flat_map(|currency| {
        (
            status(),
            prop::collection::vec(item_strategy(currency), 0..5),
            prop::collection::vec(discount(currency), 0..3),
            prop::bool::weighted(0.2),
            prop::bool::weighted(0.1),
        )
            .prop_map(
                move |(status, items, discounts, cancel_at_period_end, pause_collection)| {
                    SubscriptionForMrr {
                        status,
                        currency,
                        items,
                        discounts,
                        cancel_at_period_end,
                        pause_collection,
                    }
                },
            )
    })
}

fn policy() -> impl Strategy<Value = MrrPolicy> {
    (
        prop::bool::ANY,
        prop::bool::ANY,
        prop::collection::btree_set(status(), 0..8),
    )
        .prop_map(
            |(count_until_end, subtract_temporary_discounts, counted_statuses)| MrrPolicy {
                counted_statuses,
                cancel_at_period_end: if count_until_end {
                    CancelAtPeriodEnd::CountUntilPeriodEnd
                } else {
                    CancelAtPeriodEnd::StopAtRequest
                },
                subtract_temporary_discounts,
            },
        )
}

proptest! {
    #[test]
    fn mrr_is_never_negative(subscription in subscription(), policy in policy()) {
        let mrr = subscription_mrr(&subscription, &policy, now()).unwrap();
        prop_assert!(mrr.monthly.minor >= 0);
        prop_assert_eq!(mrr.monthly.currency, subscription.currency);
    }

    #[test]
    fn mrr_is_invariant_under_item_order(
        (subscription, shuffled) in subscription().prop_flat_map(|subscription| {
            let items = subscription.items.clone();
            (Just(subscription), Just(items).prop_shuffle())
        }),
        policy in policy(),
    ) {
        let reordered = SubscriptionForMrr { items: shuffled, ..subscription.clone() };
        prop_assert_eq!(
            subscription_mrr(&subscription, &policy, now()).unwrap(),
            subscription_mrr(&reordered, &policy, now()).unwrap()
        );
    }

    #[test]
    fn scaling_quantity_scales_per_unit_mrr(
        unit_amount in amount(),
        recurring in recurring(),
        quantity in 0u64..10_000,
        k in 1u64..100,
        currency in currency(),
    ) {
        let recurring = Recurring { usage_type: UsageType::Licensed, ..recurring };
        let at = |quantity| {
            let price = PriceForMrr {
                recurring,
                scheme: PricingScheme::PerUnit { unit_amount, transform_quantity: None },
            };
            let subscription = sub(currency, vec![ItemForMrr::new(price, quantity)]);
            subscription_mrr(&subscription, &MrrPolicy::default(), now())
                .map(|mrr| i128::from(mrr.monthly.minor))
        };
        // Amounts past i64 minor units are refused (MrrError::Overflow), not scaled.
        let (Ok(scaled), Ok(single)) = (at(quantity * k), at(quantity)) else {
            prop_assume!(false);
            unreachable!()
        };
        let k = i128::from(k);
        // Each rounding is off by at most ½: |round(kx) − k·round(x)| ≤ (k + 1) / 2.
        let error = (scaled - k * single).abs();
        prop_assert!(2 * error <= k + 1, "error {} for k = {}", error, k);
    }

    #[test]
    fn aggregation_never_mixes_currencies(
        mrrs in prop::collection::vec(
            (currency(), 0i64..1_000_000_000).prop_map(|(currency, minor)| Mrr { monthly: Money::new(minor, currency) }),
            0..30,
        )
    ) {
        let totals = total_mrr(&mrrs).unwrap();
        let currencies: BTreeSet<Currency> = mrrs.iter().map(|mrr| mrr.monthly.currency).collect();
        prop_assert_eq!(totals.len(), currencies.len());
        for currency in currencies {
            let expected: i64 = mrrs
                .iter()
                .filter(|mrr| mrr.monthly.currency == currency)
                .map(|mrr| mrr.monthly.minor)
                .sum();
            prop_assert_eq!(totals.get(currency), Money::new(expected, currency));
        }
        let arr = arr_by_currency(&totals).unwrap();
        for total in totals.iter() {
            prop_assert_eq!(arr.get(total.currency).minor, total.minor * 12);
        }
    }
}
