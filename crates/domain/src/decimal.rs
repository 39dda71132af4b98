//! Exact non-negative decimal numbers, for the values Stripe sends as decimal
//! strings (`unit_amount_decimal`, `flat_amount_decimal`) or as JSON numbers
//! with a fractional part (`percent_off`). Never a float.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Most fractional digits we keep. Stripe allows 12 on `*_decimal` amounts.
pub const MAX_DECIMAL_SCALE: u32 = 18;

/// An exact non-negative decimal number: `digits × 10^-scale`.
///
/// Trailing fractional zeros are dropped on construction, so equal numbers
/// compare equal (`"1.50" == "1.5"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Decimal {
    digits: i128,
    scale: u32,
}

/// Why a string is not a [`Decimal`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    /// Not of the form `digits[.digits][e[+-]digits]`.
    #[error("{0:?} is not a non-negative decimal number")]
    Syntax(String),
    /// Too many digits, or more than [`MAX_DECIMAL_SCALE`] fractional digits.
    #[error("{0:?} is out of the supported decimal range")]
    OutOfRange(String),
}

impl Decimal {
    /// Zero.
    pub const ZERO: Decimal = Decimal {
        digits: 0,
        scale: 0,
    };

    /// A whole number, e.g. Stripe's integer `unit_amount`.
    pub fn from_integer(value: u64) -> Self {
        Decimal {
            digits: i128::from(value),
            scale: 0,
        }
    }

    /// The number with `digits` and `scale` fractional digits, or `None` when
    /// `digits` is negative or the scale exceeds [`MAX_DECIMAL_SCALE`].
    pub fn from_parts(digits: i128, scale: u32) -> Option<Self> {
        if digits < 0 || scale > MAX_DECIMAL_SCALE {
            return None;
        }
        Some(Self::normalised(digits, scale))
    }

    /// `(digits, scale)` with the value `digits × 10^-scale`, trailing zeros removed.
    pub fn to_parts(self) -> (i128, u32) {
        (self.digits, self.scale)
    }

    /// Whether the number is zero.
    pub fn is_zero(self) -> bool {
        self.digits == 0
    }

    fn normalised(mut digits: i128, mut scale: u32) -> Self {
        while scale > 0 && digits % 10 == 0 {
            digits /= 10;
            scale -= 1;
        }
        Decimal { digits, scale }
    }
}

impl FromStr for Decimal {
    type Err = DecimalError;

    fn from_str(input: &str) -> Result<Self, DecimalError> {
        let syntax = || DecimalError::Syntax(input.to_owned());
        let range = || DecimalError::OutOfRange(input.to_owned());

        // serde_json renders some numbers with an exponent (`1e-7`), so accept it.
        let (mantissa, exponent) = match input.find(['e', 'E']) {
            Some(at) => {
                let exp: i32 = input[at + 1..].parse().map_err(|_| syntax())?;
                (&input[..at], exp)
            }
            None => (input, 0),
        };
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let is_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !is_digits(whole) || !is_digits(fraction) {
            return Err(syntax());
        }
        if mantissa.ends_with('.') {
            return Err(syntax());
        }

        let mut digits: i128 = 0;
        for b in whole.bytes().chain(fraction.bytes()) {
            digits = digits
                .checked_mul(10)
                .and_then(|d| d.checked_add(i128::from(b - b'0')))
                .ok_or_else(range)?;
        }
        let mut scale = i64::try_from(fraction.len()).map_err(|_| range())? - i64::from(exponent);
        while scale < 0 {
            digits = digits.checked_mul(10).ok_or_else(range)?;
            scale += 1;
        }
        let mut scale = u32::try_from(scale).map_err(|_| range())?;
        // Drop trailing zeros before the range check so "1.000…0" is accepted.
        while scale > 0 && digits % 10 == 0 {
            digits /= 10;
            scale -= 1;
        }
        if scale > MAX_DECIMAL_SCALE {
            return Err(range());
        }
        Ok(Decimal { digits, scale })
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Self) -> Ordering {
        // Integer parts first, then fractions widened to the maximum scale:
        // exact without any risk of overflow.
        let split = |d: &Decimal| {
            let unit = 10i128.pow(d.scale);
            let fraction = (d.digits % unit) * 10i128.pow(MAX_DECIMAL_SCALE - d.scale);
            (d.digits / unit, fraction)
        };
        split(self).cmp(&split(other))
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.digits.to_string();
        let scale = self.scale as usize;
        if scale == 0 {
            return f.write_str(&digits);
        }
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (whole, fraction) = padded.split_at(padded.len() - scale);
        write!(f, "{whole}.{fraction}")
    }
}

impl Serialize for Decimal {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Decimal {
    /// Accepts a decimal string (`"12.5"`) or a JSON integer; rejects floats,
    /// which could already have lost precision.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Decimal;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-negative decimal string or integer")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Decimal, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Decimal, E> {
                Ok(Decimal::from_integer(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Decimal, E> {
                u64::try_from(v)
                    .map(Decimal::from_integer)
                    .map_err(|_| E::custom("negative decimal"))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn parses_integers_fractions_and_exponents() {
        assert_eq!(d("1234").to_parts(), (1234, 0));
        assert_eq!(d("1234.5678").to_parts(), (12345678, 4));
        assert_eq!(d("0.000000000001").to_parts(), (1, 12));
        assert_eq!(d("12.50"), d("12.5"));
        assert_eq!(d("1.0"), Decimal::from_integer(1));
        assert_eq!(d("1e-7").to_parts(), (1, 7));
        assert_eq!(d("2.5E2"), Decimal::from_integer(250));
        assert!(d("0").is_zero());
    }

    #[test]
    fn rejects_malformed_or_negative_input() {
        for bad in [
            "", "-1", "+1", ".5", "5.", "1.2.3", "1,5", "abc", "1e", " 1", "NaN",
        ] {
            assert!(bad.parse::<Decimal>().is_err(), "{bad:?}");
        }
        assert!(matches!(
            "0.0000000000000000001".parse::<Decimal>(),
            Err(DecimalError::OutOfRange(_))
        ));
    }

    #[test]
    fn displays_canonically() {
        assert_eq!(d("0.05").to_string(), "0.05");
        assert_eq!(d("1234.5000").to_string(), "1234.5");
        assert_eq!(d("7").to_string(), "7");
    }

    #[test]
    fn orders_numerically() {
        assert!(d("0.5") < d("1"));
        assert!(d("100") > d("99.999999"));
        assert_eq!(d("2.50").cmp(&d("2.5")), Ordering::Equal);
    }

    #[test]
    fn serde_accepts_strings_and_integers_but_not_floats() {
        assert_eq!(
            serde_json::from_str::<Decimal>("\"12.5\"").unwrap(),
            d("12.5")
        );
        assert_eq!(serde_json::from_str::<Decimal>("12").unwrap(), d("12"));
        assert!(serde_json::from_str::<Decimal>("12.5").is_err());
        assert!(serde_json::from_str::<Decimal>("-1").is_err());
        assert_eq!(serde_json::to_string(&d("0.25")).unwrap(), "\"0.25\"");
    }
}
