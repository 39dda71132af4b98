//! Currencies and amounts in integer minor units, as Stripe sends them.
//!
//! Amounts of different currencies are never added: [`Money`] arithmetic
//! fails on a currency mismatch, and [`MoneyByCurrency`] keeps one total per
//! currency.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Stripe's zero-decimal currencies: the amount is in whole units (¥1 = 1).
const ZERO_DECIMAL: [&str; 16] = [
    "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
    "xaf", "xof", "xpf",
];

/// Stripe's three-decimal currencies: the amount is in thousandths.
const THREE_DECIMAL: [&str; 5] = ["bhd", "jod", "kwd", "omr", "tnd"];

/// A three-letter ISO 4217 currency code, stored lowercase as Stripe spells it.
///
/// Parsing accepts any ASCII case and normalises to lowercase. It checks the
/// shape only, not membership in ISO 4217: Stripe adds currencies over time
/// and we would rather keep an amount than reject it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; 3]);

/// Why a string is not a [`Currency`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a three-letter currency code")]
pub struct CurrencyError(pub String);

impl Currency {
    /// US dollar.
    pub const USD: Currency = Currency(*b"usd");
    /// Euro.
    pub const EUR: Currency = Currency(*b"eur");
    /// Pound sterling.
    pub const GBP: Currency = Currency(*b"gbp");
    /// Japanese yen (zero-decimal).
    pub const JPY: Currency = Currency(*b"jpy");
    /// Kuwaiti dinar (three-decimal).
    pub const KWD: Currency = Currency(*b"kwd");

    /// Parses a three-letter code in any ASCII case.
    pub fn parse(code: &str) -> Result<Self, CurrencyError> {
        match code.as_bytes() {
            &[a, b, c] if [a, b, c].iter().all(u8::is_ascii_alphabetic) => Ok(Currency([
                a.to_ascii_lowercase(),
                b.to_ascii_lowercase(),
                c.to_ascii_lowercase(),
            ])),
            _ => Err(CurrencyError(code.to_owned())),
        }
    }

    /// The lowercase code, e.g. `"usd"`.
    pub fn as_str(&self) -> &str {
        // Only ASCII letters are ever stored, so this cannot fail.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }

    /// Number of decimal digits in Stripe's minor unit: 0 for zero-decimal
    /// currencies (`jpy`), 3 for `bhd jod kwd omr tnd`, otherwise 2.
    ///
    /// This is Stripe's API convention, not ISO 4217's: e.g. Stripe sends
    /// `isk` and `huf` amounts with two decimals.
    pub fn minor_unit_exponent(&self) -> u32 {
        if self.is_zero_decimal() {
            0
        } else if THREE_DECIMAL.contains(&self.as_str()) {
            3
        } else {
            2
        }
    }

    /// Whether Stripe treats the currency as zero-decimal.
    pub fn is_zero_decimal(&self) -> bool {
        ZERO_DECIMAL.contains(&self.as_str())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.as_str())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Currency {
    type Err = CurrencyError;
    fn from_str(code: &str) -> Result<Self, CurrencyError> {
        Currency::parse(code)
    }
}

impl TryFrom<&str> for Currency {
    type Error = CurrencyError;
    fn try_from(code: &str) -> Result<Self, CurrencyError> {
        Currency::parse(code)
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = std::borrow::Cow::<str>::deserialize(deserializer)?;
        Currency::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// Why a money operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The operands have different currencies.
    #[error("cannot combine {left} with {right} without an exchange rate")]
    CurrencyMismatch {
        /// Currency of the left operand.
        left: Currency,
        /// Currency of the right operand.
        right: Currency,
    },
    /// The result does not fit in an `i64` of minor units.
    #[error("amount overflow in {0}")]
    Overflow(Currency),
}

/// An amount in integer minor units of one currency (cents for `usd`, yen for
/// `jpy`, fils for `kwd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    /// The amount in minor units; may be negative (credits, refunds).
    pub minor: i64,
    /// The currency of `minor`.
    pub currency: Currency,
}

impl Money {
    /// `minor` units of `currency`.
    pub const fn new(minor: i64, currency: Currency) -> Self {
        Money { minor, currency }
    }

    /// Zero in `currency`.
    pub const fn zero(currency: Currency) -> Self {
        Money { minor: 0, currency }
    }

    /// Whether the amount is zero.
    pub fn is_zero(&self) -> bool {
        self.minor == 0
    }

    /// Whether the amount is below zero.
    pub fn is_negative(&self) -> bool {
        self.minor < 0
    }

    /// The amount for people: `$1,234.56`, `€12.00`, `£0.50`, `¥1,200`, otherwise the
    /// number and the code (`1,234.567 KWD`); minus sign first (`-$5.00`).
    pub fn display(&self) -> String {
        let exponent = self.currency.minor_unit_exponent();
        let scale = 10u64.pow(exponent);
        let magnitude = self.minor.unsigned_abs();
        let (whole, fraction) = (magnitude / scale, magnitude % scale);
        let digits = whole.to_string();
        let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
        for (i, digit) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(digit);
        }
        if exponent > 0 {
            grouped.push_str(&format!(".{fraction:0width$}", width = exponent as usize));
        }
        let sign = if self.minor < 0 { "-" } else { "" };
        let symbol = match self.currency.as_str() {
            "usd" => Some("$"),
            "eur" => Some("€"),
            "gbp" => Some("£"),
            "jpy" => Some("¥"),
            _ => None,
        };
        match symbol {
            Some(symbol) => format!("{sign}{symbol}{grouped}"),
            None => format!(
                "{sign}{grouped} {}",
                self.currency.as_str().to_ascii_uppercase()
            ),
        }
    }

    fn same_currency(&self, other: &Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            })
        }
    }

    /// `self + other`; fails on different currencies or overflow.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(&other)?;
        let minor = self
            .minor
            .checked_add(other.minor)
            .ok_or(MoneyError::Overflow(self.currency))?;
        Ok(Money::new(minor, self.currency))
    }

    /// `self - other`; fails on different currencies or overflow.
    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(&other)?;
        let minor = self
            .minor
            .checked_sub(other.minor)
            .ok_or(MoneyError::Overflow(self.currency))?;
        Ok(Money::new(minor, self.currency))
    }

    /// `self × factor`; fails on overflow.
    pub fn checked_mul(self, factor: i64) -> Result<Money, MoneyError> {
        let minor = self
            .minor
            .checked_mul(factor)
            .ok_or(MoneyError::Overflow(self.currency))?;
        Ok(Money::new(minor, self.currency))
    }

    /// The amount in major units as a plain decimal string, with exactly as
    /// many decimals as the currency's minor unit: `"1234.56"` (usd),
    /// `"-0.05"` (usd), `"1234"` (jpy), `"1.234"` (kwd).
    pub fn to_major_string(&self) -> String {
        self.major_parts(false)
    }

    /// A human-readable amount with thousands separators and the upper-case
    /// code: `"1,234.56 USD"`. Also what `Display` prints.
    pub fn to_display_string(&self) -> String {
        format!(
            "{} {}",
            self.major_parts(true),
            self.currency.as_str().to_ascii_uppercase()
        )
    }

    fn major_parts(&self, group_thousands: bool) -> String {
        let exponent = self.currency.minor_unit_exponent();
        let unit = 10u64.pow(exponent);
        // unsigned_abs so i64::MIN formats without overflow.
        let magnitude = self.minor.unsigned_abs();
        let whole = (magnitude / unit).to_string();
        let whole = if group_thousands {
            group(&whole)
        } else {
            whole
        };
        let sign = if self.minor < 0 { "-" } else { "" };
        if exponent == 0 {
            format!("{sign}{whole}")
        } else {
            let fraction = magnitude % unit;
            format!(
                "{sign}{whole}.{fraction:0width$}",
                width = exponent as usize
            )
        }
    }
}

fn group(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_display_string())
    }
}

/// Totals kept apart per currency: adding a [`Money`] only ever adds to the
/// total of its own currency.
///
/// A currency that was added stays listed even when its total is zero, so
/// "customers paying in EUR, all free" is distinguishable from "no EUR at all".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(
        value_type = std::collections::BTreeMap<String, i64>,
        description = "Amounts per currency, never converted: lowercase ISO 4217 code to minor units.",
        example = json!({ "usd": 50000, "eur": 20000 })
    )
)]
#[serde(transparent)]
pub struct MoneyByCurrency(BTreeMap<Currency, i64>);

impl MoneyByCurrency {
    /// No totals.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sums `amounts` per currency.
    pub fn try_sum<I: IntoIterator<Item = Money>>(amounts: I) -> Result<Self, MoneyError> {
        let mut totals = Self::new();
        for amount in amounts {
            totals.add(amount)?;
        }
        Ok(totals)
    }

    /// Adds `amount` to the total of its currency; fails on overflow and then
    /// leaves the totals unchanged.
    pub fn add(&mut self, amount: Money) -> Result<(), MoneyError> {
        let total = self.0.entry(amount.currency).or_insert(0);
        *total = total
            .checked_add(amount.minor)
            .ok_or(MoneyError::Overflow(amount.currency))?;
        Ok(())
    }

    /// Adds every total of `other` into `self`.
    pub fn add_all(&mut self, other: &MoneyByCurrency) -> Result<(), MoneyError> {
        // Check first so a failure leaves `self` unchanged.
        for (currency, minor) in &other.0 {
            self.get(*currency)
                .checked_add(Money::new(*minor, *currency))?;
        }
        for money in other.iter() {
            self.add(money)?;
        }
        Ok(())
    }

    /// Every total multiplied by `factor` (e.g. 12 for ARR).
    pub fn checked_mul(&self, factor: i64) -> Result<MoneyByCurrency, MoneyError> {
        let mut scaled = BTreeMap::new();
        for money in self.iter() {
            let product = money.checked_mul(factor)?;
            scaled.insert(product.currency, product.minor);
        }
        Ok(MoneyByCurrency(scaled))
    }

    /// The total for `currency` (zero when absent).
    pub fn get(&self, currency: Currency) -> Money {
        Money::new(self.0.get(&currency).copied().unwrap_or(0), currency)
    }

    /// Whether `currency` has a total (possibly zero).
    pub fn contains(&self, currency: Currency) -> bool {
        self.0.contains_key(&currency)
    }

    /// The totals, ordered by currency code.
    pub fn iter(&self) -> impl Iterator<Item = Money> + '_ {
        self.0
            .iter()
            .map(|(currency, minor)| Money::new(*minor, *currency))
    }

    /// Number of currencies with a total.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no currency has a total.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(minor: i64) -> Money {
        Money::new(minor, Currency::USD)
    }

    #[test]
    fn amounts_display_with_symbol_grouping_and_stripe_exponent() {
        let money = |minor, code| Money::new(minor, Currency::parse(code).unwrap()).display();
        assert_eq!(money(123_456, "usd"), "$1,234.56");
        assert_eq!(money(5, "usd"), "$0.05");
        assert_eq!(money(0, "eur"), "€0.00");
        assert_eq!(money(-500, "gbp"), "-£5.00");
        assert_eq!(money(1_200, "jpy"), "¥1,200");
        assert_eq!(money(1_234_567, "kwd"), "1,234.567 KWD");
        assert_eq!(money(100_000_000, "chf"), "1,000,000.00 CHF");
        assert_eq!(money(99, "krw"), "99 KRW");
        assert_eq!(money(i64::MIN, "usd"), "-$92,233,720,368,547,758.08");
    }

    #[test]
    fn currency_parses_and_normalises_case() {
        assert_eq!(Currency::parse("usd").unwrap(), Currency::USD);
        assert_eq!(Currency::parse("USD").unwrap(), Currency::USD);
        assert_eq!("EuR".parse::<Currency>().unwrap().as_str(), "eur");
        for bad in ["", "us", "usdd", "us1", "u d", "ü$d", "€"] {
            assert!(Currency::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn currency_knows_stripe_exponents() {
        for code in ZERO_DECIMAL {
            assert_eq!(
                Currency::parse(code).unwrap().minor_unit_exponent(),
                0,
                "{code}"
            );
        }
        for code in THREE_DECIMAL {
            assert_eq!(
                Currency::parse(code).unwrap().minor_unit_exponent(),
                3,
                "{code}"
            );
        }
        for code in ["usd", "eur", "gbp", "isk", "huf", "twd"] {
            assert_eq!(
                Currency::parse(code).unwrap().minor_unit_exponent(),
                2,
                "{code}"
            );
        }
        assert!(Currency::JPY.is_zero_decimal());
        assert!(!Currency::USD.is_zero_decimal());
    }

    #[test]
    fn currency_serde_is_a_validated_lowercase_string() {
        assert_eq!(serde_json::to_string(&Currency::EUR).unwrap(), "\"eur\"");
        assert_eq!(
            serde_json::from_str::<Currency>("\"GBP\"").unwrap(),
            Currency::GBP
        );
        assert!(serde_json::from_str::<Currency>("\"pounds\"").is_err());
    }

    #[test]
    fn arithmetic_is_checked() {
        assert_eq!(usd(150).checked_add(usd(50)).unwrap(), usd(200));
        assert_eq!(usd(150).checked_sub(usd(200)).unwrap(), usd(-50));
        assert_eq!(usd(150).checked_mul(12).unwrap(), usd(1800));
        assert_eq!(
            usd(1).checked_add(Money::new(1, Currency::EUR)),
            Err(MoneyError::CurrencyMismatch {
                left: Currency::USD,
                right: Currency::EUR
            })
        );
        assert_eq!(
            usd(i64::MAX).checked_add(usd(1)),
            Err(MoneyError::Overflow(Currency::USD))
        );
        assert_eq!(
            usd(i64::MIN).checked_sub(usd(1)),
            Err(MoneyError::Overflow(Currency::USD))
        );
        assert_eq!(
            usd(i64::MAX).checked_mul(2),
            Err(MoneyError::Overflow(Currency::USD))
        );
    }

    #[test]
    fn formats_major_units_by_exponent() {
        assert_eq!(usd(123456).to_major_string(), "1234.56");
        assert_eq!(usd(5).to_major_string(), "0.05");
        assert_eq!(usd(-5).to_major_string(), "-0.05");
        assert_eq!(usd(0).to_major_string(), "0.00");
        assert_eq!(Money::new(1234, Currency::JPY).to_major_string(), "1234");
        assert_eq!(Money::new(1234, Currency::KWD).to_major_string(), "1.234");
        assert_eq!(usd(i64::MIN).to_major_string(), "-92233720368547758.08");
    }

    #[test]
    fn display_groups_thousands_and_names_the_currency() {
        assert_eq!(usd(123456).to_string(), "1,234.56 USD");
        assert_eq!(usd(-100000000).to_string(), "-1,000,000.00 USD");
        assert_eq!(usd(99).to_string(), "0.99 USD");
        assert_eq!(
            Money::new(1234567, Currency::JPY).to_string(),
            "1,234,567 JPY"
        );
        assert_eq!(
            Money::new(1234567, Currency::KWD).to_string(),
            "1,234.567 KWD"
        );
    }

    #[test]
    fn money_serde_shape() {
        let json = serde_json::to_string(&usd(1999)).unwrap();
        assert_eq!(json, r#"{"minor":1999,"currency":"usd"}"#);
        assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), usd(1999));
    }

    #[test]
    fn money_by_currency_never_mixes_currencies() {
        let totals = MoneyByCurrency::try_sum([
            usd(100),
            Money::new(500, Currency::JPY),
            usd(250),
            Money::new(0, Currency::EUR),
        ])
        .unwrap();
        assert_eq!(totals.len(), 3);
        assert_eq!(totals.get(Currency::USD), usd(350));
        assert_eq!(totals.get(Currency::JPY), Money::new(500, Currency::JPY));
        assert!(totals.contains(Currency::EUR));
        assert_eq!(totals.get(Currency::GBP), Money::zero(Currency::GBP));
        assert!(!totals.contains(Currency::GBP));
        let order: Vec<_> = totals.iter().map(|m| m.currency.to_string()).collect();
        assert_eq!(order, ["eur", "jpy", "usd"]);
    }

    #[test]
    fn money_by_currency_overflow_is_reported_and_harmless() {
        let mut totals = MoneyByCurrency::try_sum([usd(i64::MAX)]).unwrap();
        assert_eq!(totals.add(usd(1)), Err(MoneyError::Overflow(Currency::USD)));
        assert_eq!(totals.get(Currency::USD), usd(i64::MAX));

        let other = MoneyByCurrency::try_sum([Money::new(1, Currency::EUR), usd(1)]).unwrap();
        assert!(totals.add_all(&other).is_err());
        assert!(!totals.contains(Currency::EUR));
    }

    #[test]
    fn money_by_currency_add_all_and_scale() {
        let mut totals = MoneyByCurrency::try_sum([usd(100)]).unwrap();
        totals
            .add_all(&MoneyByCurrency::try_sum([usd(1), Money::new(7, Currency::JPY)]).unwrap())
            .unwrap();
        let yearly = totals.checked_mul(12).unwrap();
        assert_eq!(yearly.get(Currency::USD), usd(1212));
        assert_eq!(yearly.get(Currency::JPY), Money::new(84, Currency::JPY));
    }

    #[test]
    fn money_by_currency_serde_is_a_map() {
        let totals = MoneyByCurrency::try_sum([usd(100), Money::new(5, Currency::JPY)]).unwrap();
        let json = serde_json::to_string(&totals).unwrap();
        assert_eq!(json, r#"{"jpy":5,"usd":100}"#);
        assert_eq!(
            serde_json::from_str::<MoneyByCurrency>(&json).unwrap(),
            totals
        );
        assert!(serde_json::from_str::<MoneyByCurrency>(r#"{"dollars":5}"#).is_err());
    }
}
