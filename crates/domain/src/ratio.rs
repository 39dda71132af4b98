//! Exact rational arithmetic on `i128`, so MRR is rounded once at the end
//! instead of at every division. Every operation is checked: an overflow is
//! reported, never wrapped.

use crate::decimal::Decimal;

/// `num / den` in lowest terms with `den > 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ratio {
    num: i128,
    den: i128,
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Ratio {
    pub(crate) const ZERO: Ratio = Ratio { num: 0, den: 1 };

    pub(crate) fn new(num: i128, den: i128) -> Option<Ratio> {
        if den == 0 {
            return None;
        }
        let g = gcd(num.unsigned_abs(), den.unsigned_abs());
        // g ≥ 1 because den ≠ 0; g fits i128 unless both are i128::MIN.
        let g = i128::try_from(g).ok()?;
        let (num, den) = (num / g, den / g);
        if den < 0 {
            Some(Ratio {
                num: num.checked_neg()?,
                den: den.checked_neg()?,
            })
        } else {
            Some(Ratio { num, den })
        }
    }

    pub(crate) fn integer(value: i128) -> Ratio {
        Ratio { num: value, den: 1 }
    }

    pub(crate) fn from_decimal(value: Decimal) -> Option<Ratio> {
        let (digits, scale) = value.to_parts();
        Ratio::new(digits, 10i128.checked_pow(scale)?)
    }

    pub(crate) fn checked_add(self, other: Ratio) -> Option<Ratio> {
        let g = i128::try_from(gcd(self.den.unsigned_abs(), other.den.unsigned_abs())).ok()?;
        let lhs = self.num.checked_mul(other.den / g)?;
        let rhs = other.num.checked_mul(self.den / g)?;
        Ratio::new(
            lhs.checked_add(rhs)?,
            (self.den / g).checked_mul(other.den)?,
        )
    }

    pub(crate) fn checked_sub(self, other: Ratio) -> Option<Ratio> {
        self.checked_add(Ratio {
            num: other.num.checked_neg()?,
            den: other.den,
        })
    }

    pub(crate) fn checked_mul(self, other: Ratio) -> Option<Ratio> {
        // Cross-reduce first to keep intermediates small.
        let g1 = i128::try_from(gcd(self.num.unsigned_abs(), other.den.unsigned_abs())).ok()?;
        let g2 = i128::try_from(gcd(other.num.unsigned_abs(), self.den.unsigned_abs())).ok()?;
        let (g1, g2) = (g1.max(1), g2.max(1));
        Ratio::new(
            (self.num / g1).checked_mul(other.num / g2)?,
            (self.den / g2).checked_mul(other.den / g1)?,
        )
    }

    pub(crate) fn checked_div(self, other: Ratio) -> Option<Ratio> {
        if other.num == 0 {
            return None;
        }
        self.checked_mul(Ratio::new(other.den, other.num)?)
    }

    pub(crate) fn is_negative(self) -> bool {
        self.num < 0
    }

    /// Rounds to the nearest integer, halves away from zero
    /// (2.5 → 3, −2.5 → −3).
    pub(crate) fn round_half_away_from_zero(self) -> i128 {
        let quotient = self.num / self.den;
        let remainder = (self.num % self.den).unsigned_abs();
        // remainder < den, so 2·remainder cannot overflow u128.
        if remainder * 2 >= self.den.unsigned_abs() {
            quotient + self.num.signum()
        } else {
            quotient
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(num: i128, den: i128) -> Ratio {
        Ratio::new(num, den).unwrap()
    }

    #[test]
    fn reduces_and_normalises_sign() {
        assert_eq!(r(6, -4), Ratio { num: -3, den: 2 });
        assert_eq!(r(0, 7), Ratio::ZERO);
        assert!(Ratio::new(1, 0).is_none());
    }

    #[test]
    fn arithmetic_is_exact() {
        assert_eq!(r(1, 3).checked_add(r(1, 6)).unwrap(), r(1, 2));
        assert_eq!(r(1, 3).checked_sub(r(1, 2)).unwrap(), r(-1, 6));
        assert_eq!(r(2, 3).checked_mul(r(9, 4)).unwrap(), r(3, 2));
        assert_eq!(r(2, 3).checked_div(r(4, 9)).unwrap(), r(3, 2));
        assert!(r(1, 1).checked_div(Ratio::ZERO).is_none());
        assert!(Ratio::integer(i128::MAX).checked_add(r(1, 1)).is_none());
    }

    #[test]
    fn rounds_half_away_from_zero() {
        let cases = [
            ((5, 2), 3),
            ((-5, 2), -3),
            ((7, 3), 2),
            ((8, 3), 3),
            ((-7, 3), -2),
            ((4, 1), 4),
            ((1, 2), 1),
            ((49, 100), 0),
        ];
        for ((num, den), expected) in cases {
            assert_eq!(
                r(num, den).round_half_away_from_zero(),
                expected,
                "{num}/{den}"
            );
        }
    }
}
