//! Deterministic randomness and Stripe-shaped ids.
//!
//! The fake uses its own tiny generator (SplitMix64) instead of `rand` so that a seed
//! produces the same book forever, whatever version of `rand` the workspace resolves.

/// SplitMix64: small, fast, and good enough for test data.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n == 0` yields 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + self.below((hi - lo + 1) as u64) as i64
    }

    /// True with probability `p` (0.0..=1.0).
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// Picks an index by integer weights.
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|w| *w as u64).sum();
        let mut r = self.below(total);
        for (i, w) in weights.iter().enumerate() {
            if r < *w as u64 {
                return i;
            }
            r -= *w as u64;
        }
        weights.len().saturating_sub(1)
    }

    pub fn alnum(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| ALPHABET[self.below(ALPHABET.len() as u64) as usize] as char)
            .collect()
    }
}

/// Base62 in ASCII order, so ids built from a sequence sort like the sequence.
const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Makes Stripe-looking ids (`cus_0000a8Xk3PqZ1m9T`): six base62 digits of a global
/// sequence then eight random ones. Ids therefore sort in creation order, which makes
/// the "newest first, ties by id" list order match creation order within a second.
#[derive(Debug, Clone)]
pub struct IdGen {
    seq: u64,
    rng: Rng,
}

impl IdGen {
    /// Re-seeds the random part of future ids. A running server salts its generator so that
    /// objects and events created at runtime get ids never seen before — as on Stripe, where
    /// an event id is unique forever — even when the fake restarts from the same seeded book.
    pub fn salt(&mut self, salt: u64) {
        self.rng = Rng::new(salt);
    }

    pub fn new(seed: u64) -> Self {
        IdGen {
            seq: 0,
            rng: Rng::new(seed.wrapping_mul(31).wrapping_add(7)),
        }
    }

    pub fn next(&mut self, prefix: &str) -> String {
        self.seq += 1;
        let mut s = String::with_capacity(prefix.len() + 15);
        s.push_str(prefix);
        s.push('_');
        let mut n = self.seq;
        let mut digits = [b'0'; 6];
        for d in digits.iter_mut().rev() {
            *d = ALPHABET[(n % 62) as usize];
            n /= 62;
        }
        s.extend(digits.iter().map(|b| *b as char));
        s.push_str(&self.rng.alnum(8));
        s
    }

    /// A random token (secrets, codes) without the sequence part.
    pub fn token(&mut self, prefix: &str, len: usize) -> String {
        format!("{prefix}{}", self.rng.alnum(len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_in_creation_order() {
        let mut g = IdGen::new(1);
        let a = g.next("cus");
        let b = g.next("cus");
        assert!(a < b);
        assert!(a.starts_with("cus_") && a.len() == 18);
    }

    #[test]
    fn rng_is_deterministic() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert!(a.below(10) < 10);
    }
}
